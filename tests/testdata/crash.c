/* A program that really crashes, for tests: it fills some memory with a
 * recognisable pattern, then dereferences NULL (SIGSEGV). Modes (argv[1]):
 * "abort" calls abort() (SIGABRT); "wait" prints "ready" and sleeps so that
 * gcore can dump it; "unlink" deletes its own executable first; "tiny"
 * crashes before touching the heap, for small cores. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "segv";
  if (strcmp(mode, "unlink") == 0) unlink(argv[0]);
  size_t size = strcmp(mode, "tiny") == 0 ? 4096 : 4 << 20;
  unsigned char *heap = malloc(size);
  for (size_t i = 0; i < size; i++) heap[i] = (unsigned char)(i * 7 + (i >> 12));
  static char zeros[1 << 20]; /* bss: zero pages in the core */
  zeros[0] = heap[0];
  if (strcmp(mode, "wait") == 0) {
    printf("ready\n");
    fflush(stdout);
    pause();
  }
  if (strcmp(mode, "abort") == 0) abort();
  volatile int *volatile null = NULL;
  return *null + zeros[1];
}
