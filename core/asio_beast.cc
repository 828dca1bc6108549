// Boost.Asio (with its TLS layer) and Boost.Beast, compiled once here instead of inline in
// every file that includes them. CMakeLists.txt defines BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION for the whole project, so their headers only declare what
// this file defines; every target that uses them links wharf_asio. About a tenth less
// compile time in each file that uses Asio, and fewer copies of the same code to link.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
