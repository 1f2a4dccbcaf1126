/* A program that really crashes, for tests: it fills some memory with a
 * recognisable pattern, then dereferences NULL (SIGSEGV), or with "abort"
 * calls abort() (SIGABRT), or with "wait" prints "ready" and sleeps so that
 * gcore can dump it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  size_t size = 4 << 20;
  unsigned char *heap = malloc(size);
  for (size_t i = 0; i < size; i++) heap[i] = (unsigned char)(i * 7 + (i >> 12));
  static char zeros[1 << 20]; /* bss: zero pages in the core */
  zeros[0] = heap[0];
  const char *mode = argc > 1 ? argv[1] : "segv";
  if (strcmp(mode, "wait") == 0) {
    printf("ready\n");
    fflush(stdout);
    pause();
  }
  if (strcmp(mode, "abort") == 0) abort();
  volatile int *volatile null = NULL;
  return *null + zeros[1];
}
