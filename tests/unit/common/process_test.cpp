#include "common/process.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace shardgate {
namespace {

TEST(RunProcess, GivesTheChildItsEnvironmentAndInput) {
  const auto input = std::filesystem::temp_directory_path() / "shardgate-process-test-input";
  std::ofstream(input) << "from the file\n";
  RunOptions options;
  options.env = {"SHARDGATE_TEST_SECRET=s3cret", "HOME=/nowhere"};
  options.stdin_file = input;
  auto r = run_process({"sh", "-c", "echo \"$SHARDGATE_TEST_SECRET $HOME\"; cat"}, options);
  std::filesystem::remove(input);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 0);
  // An entry given replaces the inherited one of the same name.
  EXPECT_EQ(r->output, "s3cret /nowhere\nfrom the file\n");
}

TEST(RunProcess, AMissingInputIsAnError) {
  RunOptions options;
  options.stdin_file = "/nonexistent/shardgate-input";
  auto r = run_process({"cat"}, options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("cannot open the input of cat"), std::string::npos)
      << r.error().message();
}

}  // namespace
}  // namespace shardgate
