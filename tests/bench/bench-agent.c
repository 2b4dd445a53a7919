/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent of the benchmarks: its first instruction takes the time and writes it
 * (8 bytes, CLOCK_REALTIME in ns) to the FIFO named by $BENCH_FIFO, then it exits.
 * With an argument N it instead writes N bytes of text to stdout as fast as it can, once
 * the file named by $BENCH_RELEASE exists (at once without it).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (argc > 1) {
                static char buf[1 << 16];
                unsigned long long left = strtoull(argv[1], NULL, 10);
                const char *release = getenv("BENCH_RELEASE");
                struct timespec ms = { .tv_nsec = 1000000 };
                struct stat st;
                while (release && stat(release, &st) < 0)
                        nanosleep(&ms, NULL);
                for (size_t i = 0; i < sizeof(buf); i++)
                        buf[i] = i % 64 == 63 ? '\n' : (char) ('a' + i % 26);
                while (left > 0) {
                        size_t n = left < sizeof(buf) ? (size_t) left : sizeof(buf);
                        ssize_t k = write(STDOUT_FILENO, buf, n);
                        if (k <= 0)
                                return 1;
                        left -= (unsigned long long) k;
                }
                return 0;
        }
        const char *fifo = getenv("BENCH_FIFO");
        int64_t t = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
        int fd = fifo ? open(fifo, O_WRONLY | O_CLOEXEC) : -1;
        if (fd < 0 || write(fd, &t, sizeof(t)) != sizeof(t))
                return 1;
        return 0;
}
