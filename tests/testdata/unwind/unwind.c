/* Real crashes for the stack unwinder's tests (issue #12), one mode per run
 * (argv[1]). Every function is noinline with a name of its own, so that gdb's
 * stack trace and the symbol table agree on every frame:
 *
 *   segv     main -> crash_level1 -> crash_level2 -> crash_level3: writes
 *            through NULL (SIGSEGV).
 *   abort    main -> abort_level1 -> abort_level2 -> abort() (SIGABRT, raised
 *            inside the C library).
 *   handler  main -> handler_level1 -> handler_level2 sends itself SIGALRM;
 *            its handler on_signal -> handler_crash writes through NULL, so
 *            the crashing stack goes through the kernel's (or qemu's) signal
 *            frame back to handler_level2. SIGALRM, not SIGUSR1: when
 *            core_pattern pipes cores away the tests take the core with gdb,
 *            which stops at SIGUSR1 but lets SIGALRM pass to the handler.
 *   threads  3 threads park in thread_fn -> park_level1 -> park_level2 ->
 *            pause(); once all are asleep there, main -> crash_level1 ->
 *            crash_level2 -> crash_level3 crashes (SIGSEGV).
 *   wait     main -> wait_level1 -> wait_level2: prints "ready", then
 *            pause() forever, for gcore of a live process.
 *
 * Portable C11 and POSIX threads: it builds with gcc and
 * aarch64-linux-gnu-gcc, dynamic or -static. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define PARKED 3

/* Stores the compiler may not drop, and calls it may not merge into jumps:
 * each level does some work after its call, so every frame stays on the
 * stack even at -O2 (no tail calls). */
static volatile int sink;

NOINLINE void crash_level3(int depth) {
  volatile int *volatile null = NULL;
  *null = depth;
  sink = depth;
}

NOINLINE void crash_level2(int depth) {
  crash_level3(depth + 1);
  sink = depth;
}

NOINLINE void crash_level1(int depth) {
  crash_level2(depth + 1);
  sink = depth;
}

NOINLINE void abort_level2(int depth) {
  sink = depth;
  abort();
}

NOINLINE void abort_level1(int depth) {
  abort_level2(depth + 1);
  sink = depth;
}

NOINLINE void handler_crash(int signo) {
  volatile int *volatile null = NULL;
  *null = signo;
  sink = signo;
}

NOINLINE void on_signal(int signo) {
  handler_crash(signo);
  sink = signo;
}

NOINLINE void handler_level2(int depth) {
  kill(getpid(), SIGALRM);
  sink = depth;
}

NOINLINE void handler_level1(int depth) {
  handler_level2(depth + 1);
  sink = depth;
}

NOINLINE void install_handler(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0; /* no SA_ONSTACK: the frame is on the thread's stack */
  if (sigaction(SIGALRM, &action, NULL) != 0) {
    perror("sigaction");
    exit(2);
  }
}

static atomic_long parked_tids[PARKED];

NOINLINE void park_level2(int slot) {
  atomic_store(&parked_tids[slot], (long)gettid());
  for (;;) pause();
}

NOINLINE void park_level1(int slot) {
  park_level2(slot);
  sink = slot;
}

NOINLINE void *thread_fn(void *arg) {
  park_level1((int)(long)arg);
  return arg;
}

/* Whether thread `tid` of this process sleeps ('S' in its stat). */
static int asleep(long tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
  FILE *file = fopen(path, "r");
  if (file == NULL) return 0;
  char text[512];
  size_t length = fread(text, 1, sizeof text - 1, file);
  fclose(file);
  text[length] = '\0';
  char *end = strrchr(text, ')');
  return end != NULL && end[1] == ' ' && end[2] == 'S';
}

/* Starts the parked threads and waits until each sleeps in pause(). */
NOINLINE void start_parked(void) {
  pthread_t threads[PARKED];
  for (long i = 0; i < PARKED; i++) {
    if (pthread_create(&threads[i], NULL, thread_fn, (void *)i) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
  }
  struct timespec tick = {0, 1000000}; /* 1 ms, up to 10 s */
  for (int round = 0; round < 10000; round++) {
    int sleeping = 0;
    for (int i = 0; i < PARKED; i++) {
      long tid = atomic_load(&parked_tids[i]);
      if (tid != 0 && asleep(tid)) sleeping++;
    }
    if (sleeping == PARKED) break;
    nanosleep(&tick, NULL);
  }
  /* A last moment for a thread seen asleep on its way into pause(). */
  struct timespec settle = {0, 20000000};
  nanosleep(&settle, NULL);
}

NOINLINE void wait_level2(int depth) {
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
  sink = depth;
}

NOINLINE void wait_level1(int depth) {
  wait_level2(depth + 1);
  sink = depth;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "segv";
  if (strcmp(mode, "segv") == 0) {
    crash_level1(1);
  } else if (strcmp(mode, "abort") == 0) {
    abort_level1(1);
  } else if (strcmp(mode, "handler") == 0) {
    install_handler();
    handler_level1(1);
  } else if (strcmp(mode, "threads") == 0) {
    start_parked();
    crash_level1(1);
  } else if (strcmp(mode, "wait") == 0) {
    wait_level1(1);
  } else {
    fprintf(stderr, "usage: %s segv|abort|handler|threads|wait\n", argv[0]);
    return 2;
  }
  return 1; /* not reached: every mode crashes or waits */
}
