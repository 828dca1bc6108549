// libraft (the cowsql fork of the C raft library, Debian's libraft-dev 0.22 from
// bookworm-backports) for C++: its header has no extern "C" and checks its structs' sizes
// with static_asserts that C++ compilers refuse (anonymous structs inside sizeof). The
// checks compare layouts against reserved space, a guard for the library's own ABI, and the
// library was built with them; here they are skipped, and the layout is the library's.
// Include this instead of <raft.h>, before other headers.
#pragma once

#define static_assert(...)
extern "C" {
#include <raft.h>
}
#undef static_assert
