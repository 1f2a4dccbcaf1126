// An uncaught C++ exception, for the stack unwinder's tests (issue #12):
// main -> throw_level_a -> throw_level_b throws std::runtime_error, which
// nothing catches, so std::terminate -> abort() (SIGABRT). Every function is
// noinline with a name of its own.
#include <stdexcept>

static volatile int sink;

__attribute__((noinline)) void throw_level_b(int depth) {
  sink = depth;
  if (sink > 0) throw std::runtime_error("uncaught, on purpose");
  sink = depth + 1;
}

__attribute__((noinline)) void throw_level_a(int depth) {
  throw_level_b(depth + 1);
  sink = depth;
}

int main() {
  throw_level_a(1);
  return 1;
}
