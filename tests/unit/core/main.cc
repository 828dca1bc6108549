// Test main: runs GoogleTest, or the storage crash test's child role when asked to.
#include <gtest/gtest.h>

#include <string_view>

#include "test_util.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "--storage-crash-child") {
    return wharf::core::testing::storage_crash_child(argc, argv);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
