/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corral-shim. Kept small on purpose: libc and libcrypto's SHA-256 only, no allocation in
 * the loop, one process per run. See shim.h for the protocol.
 */
/* The log's digest uses OpenSSL's low-level SHA-256, deprecated since 3.0 in favour of EVP:
 * EVP would link its provider machinery into this static program (5 MB more, 0.5 ms more
 * to start) for the same assembly. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "basic/macro.h"
#include "basic/spawn.h"
#include "basic/utf8.h"
#include "basic/util.h"
#include "shim/shim-sandbox.h"
#include "shim/shim-workspace.h"
#include "basic/time-util.h"
#include "basic/fd-util.h"

/* A pipe's default capacity: one read takes all an agent writing flat out has written, which
 * halves the shim's reads, polls and log lines against 32 KiB under a flood. */
#define READ_MAX (64 * 1024)
/* After the agent exits, output still in the pipes is read for at most this long:
 * a descendant that keeps the pipe open must not keep the shim alive. */
#define DRAIN_IDLE_MS 100
#define DRAIN_MAX_MS 2000
/* Room allocated for status.json before the agent starts. */
#define SHIM_STATUS_ROOM 4096
/* After the agent exited, how many seconds held-back output waits for room on the disk. */
#define PENDING_FLUSH_TRIES 10

static void warn(const char *fmt, ...) _printf_(1, 2);
static void warn(const char *fmt, ...) {
        char buf[512];
        va_list ap;
        int n;

        n = snprintf(buf, sizeof(buf), "corral-shim[%d]: ", (int) getpid());
        va_start(ap, fmt);
        vsnprintf(buf + n, sizeof(buf) - (size_t) n, fmt, ap);
        va_end(ap);
        strncat(buf, "\n", sizeof(buf) - strlen(buf) - 1);
        (void) !write(STDERR_FILENO, buf, strlen(buf));
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t shim_line_max(size_t size) {
        /* Worst case: every byte a \u00XX escape (6 bytes); base64 is smaller. */
        return size * 6 + 160;
}

static size_t append(char *out, size_t n, const char *s) {
        size_t l = strlen(s);
        memcpy(out + n, s, l);
        return n + l;
}

/* What a byte becomes in a JSON string: 0 for itself, else the letter after the backslash
 * ('u' for \u00XX). */
static const char json_escape[256] = {
        [0x00 ... 0x08] = 'u', ['\t'] = 't', ['\n'] = 'n',  [0x0b ... 0x0c] = 'u', ['\r'] = 'r',
        [0x0e ... 0x1f] = 'u', ['"'] = '"',  ['\\'] = '\\', [0x7f] = 'u',
};

/* Whether one of the eight bytes of w needs an escape: below 0x20, '"', '\\' or 0x7f (the
 * bytes from 0x80 on are UTF-8, checked before, and stand for themselves). The tests of
 * "Bit Twiddling Hacks" (hasless, hasvalue): exact as a whole, though not per byte. */
static bool word_needs_escape(uint64_t w) {
        const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
        uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\'), del = w ^ (ones * 0x7f);

        return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
                ((del - ones) & ~del)) &
                highs;
}

size_t shim_format_line(char *out, const char *ts, const char *stream, const char *chunk, size_t size) {
        static const char hex[] = "0123456789abcdef";
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = (const unsigned char *) chunk;
        bool text = utf8_is_valid(s, size);
        size_t n = 0;

        n = append(out, n, "{\"ts\":\"");
        n = append(out, n, ts);
        n = append(out, n, "\",\"stream\":\"");
        n = append(out, n, stream);
        n = append(out, n, "\",\"chunk\":\"");
        if (text)
                for (size_t i = 0; i < size;) {
                        /* Copy the run of bytes that stand for themselves, then escape one.
                         * The run is found eight bytes at a time: this is most of the
                         * shim's work under a flood of output, beside the log's hash. */
                        size_t plain = i;
                        uint64_t w;
                        while (plain + 8 <= size && (memcpy(&w, s + plain, 8), !word_needs_escape(w)))
                                plain += 8;
                        while (plain < size && !json_escape[s[plain]])
                                plain++;
                        memcpy(out + n, s + i, plain - i);
                        n += plain - i;
                        if (plain == size)
                                break;
                        unsigned char c = s[plain];
                        out[n++] = '\\';
                        out[n++] = json_escape[c];
                        if (json_escape[c] == 'u') {
                                out[n++] = '0';
                                out[n++] = '0';
                                out[n++] = hex[c >> 4];
                                out[n++] = hex[c & 15];
                        }
                        i = plain + 1;
                }
        else
                for (size_t i = 0; i < size; i += 3) {
                        uint32_t v = (uint32_t) s[i] << 16 | (i + 1 < size ? (uint32_t) s[i + 1] << 8 : 0) |
                                (i + 2 < size ? s[i + 2] : 0);
                        out[n++] = b64[(v >> 18) & 63];
                        out[n++] = b64[(v >> 12) & 63];
                        out[n++] = i + 1 < size ? b64[(v >> 6) & 63] : '=';
                        out[n++] = i + 2 < size ? b64[v & 63] : '=';
                }
        n = append(out, n, text ? "\"}\n" : "\",\"encoding\":\"base64\"}\n");
        return n;
}

typedef struct Stream {
        const char *name;
        const char *tail_file;
        int fd; /* read end of the agent's pipe, -1 at EOF */
        char buf[READ_MAX + 4];
        size_t held; /* bytes of a split UTF-8 sequence kept for the next read */
        /* The stream's last SHIM_TAIL_MAX bytes, a ring (allocated with the first output):
         * written to tail_file at the end, so that corrald makes the run's excerpt without
         * reading back every line of the log. */
        char *tail;
        size_t tail_end;
        bool tail_full, tail_lost;
} Stream;

typedef struct Shim {
        const char *run_dir;
        int log_fd;
        bool log_failed; /* a write failed and nothing was written since: said once */
        char *line; /* shim_line_max(READ_MAX + 4) bytes */
        /* Log lines not written yet (the disk was full), oldest first; what did not fit. */
        char *pending;
        size_t n_pending;
        uint64_t pending_raw; /* the agent's bytes in it, for what is lost if it never goes out */
        uint64_t dropped_bytes;
        uint64_t log_bytes; /* the agent's output so far */
        /* The SHA-256 and size of log.ndjson as this shim wrote it, from its first byte, for
         * status.json: corrald need not read a log back to hash it. Only while every byte of
         * the file went through log_write(). */
        SHA256_CTX log_digest;
        uint64_t log_file_bytes;
        bool log_digest_ok;
        /* The limits file's: 0 for none. */
        int64_t timeout_ms, grace_ms;
        uint64_t log_bytes_max;
        int64_t started_ms, kill_at_ms;
        /* The host's lease (lease_file): CLOCK_MONOTONIC ms it lasts until, 0 for none; the
         * run's cgroup, whose other processes go with the agent when it runs out. */
        char lease_path[4096], cgroup[4096];
        int64_t lease_until_ms;
        const char *stopped; /* why the shim stopped the agent: "timeout", "log_limit", "fenced" */
        int status_new_fd; /* status.json.new, allocated when the agent started; -1 */
        Stream streams[2];
        pid_t agent; /* in a sandbox: its init, whose end is the end of every process in it */
        int status_fd; /* in a sandbox: where the init writes the agent's wait status, else -1 */
        int reported_status;
        bool agent_exited;
        int agent_status;
        bool again; /* the agent was started once more, afresh (SHIM_AGAIN_FILE) */
        bool stop_requested; /* SIGTERM (or the like) came: the agent is not started again */
        char started_at[ISO_TIME_MAX], finished_at[ISO_TIME_MAX];
} Shim;

/* Write what it can of buf: the bytes written, and the errno that stopped it (0: none). */
static size_t write_some(int fd, const char *buf, size_t size, int *ret_errno) {
        size_t done = 0;

        *ret_errno = 0;
        while (done < size) {
                ssize_t k = write(fd, buf + done, size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        *ret_errno = errno;
                        break;
                }
                done += (size_t) k;
        }
        return done;
}

/* Append to the log: the bytes written, hashed, and the errno that stopped it (0: none). */
static size_t log_write(Shim *s, const char *buf, size_t size, int *ret_errno) {
        size_t done = write_some(s->log_fd, buf, size, ret_errno);

        if (s->log_digest_ok && done > 0) {
                s->log_digest_ok = SHA256_Update(&s->log_digest, buf, done) == 1;
                s->log_file_bytes += done;
        }
        return done;
}

/* The log's digest, lower-case hex, if it is that of the whole file as it is now. */
static bool log_digest(Shim *s, char ret[static 2 * SHA256_DIGEST_LENGTH + 1]) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256_CTX copy = s->log_digest; /* what is still held may be written after */
        struct stat st;

        if (!s->log_digest_ok || fstat(s->log_fd, &st) < 0 || (uint64_t) st.st_size != s->log_file_bytes ||
            SHA256_Final(md, &copy) != 1)
                return false;
        hex_encode(md, sizeof(md), ret);
        return true;
}

static void log_failed(Shim *s, int e) {
        if (s->log_failed)
                return;
        warn("Failed to write %s/%s, holding output in memory until it can be: %s", s->run_dir, SHIM_LOG_FILE, strerror(e));
        s->log_failed = true;
}

/* Write what is held back; true when nothing is left. */
static bool flush_pending(Shim *s) {
        size_t done;
        int e;

        if (s->n_pending == 0)
                return true;
        done = log_write(s, s->pending, s->n_pending, &e);
        memmove(s->pending, s->pending + done, s->n_pending - done);
        s->n_pending -= done;
        if (s->n_pending > 0) {
                log_failed(s, e);
                return false;
        }
        s->pending_raw = 0;
        if (s->log_failed) {
                warn("%s/%s can be written again; %llu byte(s) of output were lost meanwhile", s->run_dir, SHIM_LOG_FILE,
                     (unsigned long long) s->dropped_bytes);
                s->log_failed = false;
        }
        return true;
}

/* Hold line[0..size) back; false when it does not fit. The rest of a line that was
 * written in part always fits (the buffer has room for one line more than its limit), so
 * that the log never holds half a line. */
static bool hold(Shim *s, const char *line, size_t size, size_t raw, bool partial) {
        if (!s->pending) {
                s->pending = malloc(SHIM_PENDING_MAX + shim_line_max(READ_MAX + 4));
                if (!s->pending)
                        return false;
        }
        if (!partial && s->n_pending + size > SHIM_PENDING_MAX)
                return false;
        memcpy(s->pending + s->n_pending, line, size);
        s->n_pending += size;
        s->pending_raw += raw;
        return true;
}

static void stop_agent(Shim *s, const char *why);

static void tail_append(Stream *st, const char *data, size_t size) {
        size_t first;

        if (!st->tail && !st->tail_lost && !(st->tail = malloc(SHIM_TAIL_MAX)))
                st->tail_lost = true; /* corrald then reads the log instead */
        if (!st->tail)
                return;
        if (size >= SHIM_TAIL_MAX) {
                memcpy(st->tail, data + size - SHIM_TAIL_MAX, SHIM_TAIL_MAX);
                st->tail_end = 0;
                st->tail_full = true;
                return;
        }
        first = MIN(size, SHIM_TAIL_MAX - st->tail_end);
        memcpy(st->tail + st->tail_end, data, first);
        memcpy(st->tail, data + first, size - first);
        st->tail_full = st->tail_full || st->tail_end + size >= SHIM_TAIL_MAX;
        st->tail_end = (st->tail_end + size) % SHIM_TAIL_MAX;
}

static void log_chunk(Shim *s, Stream *st, const char *data, size_t size) {
        char ts[ISO_TIME_MAX];
        size_t n, done;
        int e;

        if (size == 0)
                return;
        /* Past the limit nothing more is kept: the agent is being stopped. */
        if (s->log_bytes_max > 0 && s->log_bytes >= s->log_bytes_max)
                return;
        s->log_bytes += size;
        tail_append(st, data, size);
        (void) iso_time_now(ts);
        n = shim_format_line(s->line, ts, st->name, data, size);
        if (!flush_pending(s)) {
                if (!hold(s, s->line, n, size, false))
                        s->dropped_bytes += size;
        } else {
                done = log_write(s, s->line, n, &e);
                if (done < n) {
                        log_failed(s, e);
                        if (!hold(s, s->line + done, n - done, size, done > 0))
                                s->dropped_bytes += size;
                }
        }
        if (s->log_bytes_max > 0 && s->log_bytes >= s->log_bytes_max)
                stop_agent(s, "log_limit");
}

typedef enum PumpResult {
        PUMP_DATA,
        PUMP_AGAIN, /* nothing to read right now */
        PUMP_EOF,
} PumpResult;

static PumpResult pump(Shim *s, Stream *st) {
        ssize_t k = read(st->fd, st->buf + st->held, READ_MAX);
        size_t total, complete;

        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                return PUMP_AGAIN;
        if (k <= 0) {
                /* EOF (or a broken pipe): whatever was held back goes out as it is. */
                log_chunk(s, st, st->buf, st->held);
                st->held = 0;
                close(st->fd);
                st->fd = -1;
                return PUMP_EOF;
        }
        total = st->held + (size_t) k;
        complete = utf8_complete_prefix(st->buf, total);
        log_chunk(s, st, st->buf, complete);
        st->held = total - complete;
        memmove(st->buf, st->buf + complete, st->held);
        return PUMP_DATA;
}

static void agent_ended(Shim *s, int status) {
        s->agent_exited = true;
        s->agent_status = status;
        (void) iso_time_now(s->finished_at);
}

/* A limit of the limits file was reached: SIGTERM now, SIGKILL after the grace period. */
static void stop_agent(Shim *s, const char *why) {
        if (s->stopped || s->agent_exited || s->agent <= 0)
                return;
        s->stopped = why;
        warn("Stopping the agent: %s", streq(why, "timeout") ? "its timeout passed" : "its output passed the log limit");
        (void) kill(-s->agent, SIGTERM);
        s->kill_at_ms = now_ms() + (s->grace_ms > 0 ? s->grace_ms : 1000);
}

/* The lease file's deadline: "until_mono_ms=N". 0 when there is none to be read, which
 * fences nothing: a file corrald has not written yet is no lease that ran out. */
static int64_t read_lease(const Shim *s) {
        char buf[128];
        ssize_t k;
        int fd;

        fd = open(s->lease_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (k <= 0)
                return 0;
        buf[k] = 0;
        if (strncmp(buf, "until_mono_ms=", 14) != 0)
                return 0;
        long long v = strtoll(buf + 14, NULL, 10);
        return v > 0 ? (int64_t) v : 0;
}

/* Every process of the run's cgroup but the shim: those the agent left outside its process
 * group (a daemon it started) are to go too. A few rounds, for what forks meanwhile. */
static void kill_cgroup_rest(const Shim *s) {
        char path[4200], buf[4096];
        pid_t self = getpid();

        if (!s->cgroup[0])
                return;
        snprintf(path, sizeof(path), "%s/cgroup.procs", s->cgroup);
        for (int round = 0; round < 20; round++) {
                bool others = false;
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return;
                ssize_t k = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (k <= 0)
                        return;
                buf[k] = 0;
                /* Only whole lines: a pid cut off at the end of the buffer is no pid. */
                for (char *p = buf, *end; *p; p = end + 1) {
                        long pid = strtol(p, &end, 10);
                        if (end == p || *end != '\n')
                                break;
                        if (pid > 0 && pid != self) {
                                (void) kill((pid_t) pid, SIGKILL);
                                others = true;
                        }
                }
                if (!others)
                        return;
        }
}

/* The host's lease ran out with corrald not there to renew it: another host may take the
 * run over and start its retry, so this one must not execute any longer. No grace: SIGKILL,
 * even of an agent that a limit is stopping already (its grace must not outlast the lease). */
static void fence_agent(Shim *s) {
        if (s->agent_exited || s->agent <= 0)
                return;
        if (!s->stopped)
                s->stopped = "fenced";
        warn("Killing the agent: the host's lease ran out (%s), and another host may take the run over", s->lease_path);
        (void) kill(-s->agent, SIGKILL);
        kill_cgroup_rest(s);
}

/* What the clock asks of the shim now; the poll timeout until it asks again (-1: never). */
static int tick(Shim *s) {
        int64_t now = now_ms(), next = -1;

        /* The deadline in memory is read again only when it has passed: corrald renews it
         * long before, so the file is read once per deadline, not per tick. */
        if (s->lease_until_ms > 0 && !s->agent_exited) {
                if (now >= s->lease_until_ms)
                        s->lease_until_ms = read_lease(s) ?: s->lease_until_ms;
                if (now >= s->lease_until_ms) {
                        fence_agent(s);
                        s->lease_until_ms = 0;
                } else
                        next = s->lease_until_ms - now;
        }

        if (s->timeout_ms > 0 && !s->agent_exited) {
                int64_t deadline = s->started_ms + s->timeout_ms;
                if (now >= deadline)
                        stop_agent(s, "timeout");
                else if (next < 0 || deadline - now < next)
                        next = deadline - now;
        }
        if (s->kill_at_ms > 0 && !s->agent_exited) {
                if (now >= s->kill_at_ms) {
                        (void) kill(-s->agent, SIGKILL);
                        s->kill_at_ms = 0;
                } else if (next < 0 || s->kill_at_ms - now < next)
                        next = s->kill_at_ms - now;
        }
        /* Held-back output is tried again every second. */
        if (s->n_pending > 0 && !flush_pending(s) && (next < 0 || next > 1000))
                next = 1000;
        return next < 0 ? -1 : (int) MIN(next, (int64_t) INT32_MAX);
}

/* The sandbox init's word on how the agent ended (it has written it, or died without). */
static void read_agent_status(Shim *s) {
        ssize_t k;

        if (s->status_fd < 0)
                return;
        k = read(s->status_fd, &s->reported_status, sizeof(s->reported_status));
        if (k == (ssize_t) sizeof(s->reported_status) && !s->agent_exited)
                agent_ended(s, s->reported_status);
        close(s->status_fd);
        s->status_fd = -1;
}

static void reap(Shim *s) {
        int status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (pid == s->agent) {
                        /* A sandbox init that ends has said how the agent ended, unless it
                         * was killed first: then the agent went with it, of the same signal. */
                        read_agent_status(s);
                        if (!s->agent_exited)
                                agent_ended(s, status);
                }
}

static const char *signal_name(int sig, char *buf, size_t size) {
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
                snprintf(buf, size, "SIG%s", abbrev);
        else
                snprintf(buf, size, "%d", sig);
        return buf;
}

/* Each stream's tail into its file (none for a stream that said nothing): true when both
 * are there whole, and status.json says so with their sizes. */
static bool write_tails(Shim *s) {
        for (int i = 0; i < 2; i++) {
                Stream *st = &s->streams[i];
                size_t old = st->tail_full ? SHIM_TAIL_MAX - st->tail_end : 0;
                char path[4096];
                bool ok;
                int fd, e;

                if (st->tail_lost)
                        return false;
                if (!st->tail_full && st->tail_end == 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", s->run_dir, st->tail_file);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd < 0)
                        return false;
                /* Oldest first: the ring's part after its end, then the part before it. */
                ok = write_some(fd, st->tail + st->tail_end, old, &e) == old &&
                        write_some(fd, st->tail, st->tail_end, &e) == st->tail_end;
                close(fd);
                if (!ok)
                        return false;
        }
        return true;
}

static size_t tail_size(const Stream *st) {
        return st->tail_full ? SHIM_TAIL_MAX : st->tail_end;
}

static int write_status(Shim *s) {
        char path[4096], tmp[4096], json[768], sig[32], digest[2 * SHA256_DIGEST_LENGTH + 1];
        int n;

        if (WIFEXITED(s->agent_status))
                n = snprintf(json, sizeof(json), "{\"exitCode\":%d,\"signal\":null", WEXITSTATUS(s->agent_status));
        else
                n = snprintf(json, sizeof(json), "{\"exitCode\":null,\"signal\":\"%s\",\"coreDumped\":%s",
                             signal_name(WTERMSIG(s->agent_status), sig, sizeof(sig)),
                             WCOREDUMP(s->agent_status) ? "true" : "false");
        if (s->agent > 0)
                n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"agentPid\":%d", (int) s->agent);
        else
                n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"agentPid\":null"); /* never executed */
        if (s->stopped)
                n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"stopped\":\"%s\"", s->stopped);
        if (s->again)
                n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"again\":true");
        n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"logBytes\":%llu,\"logDroppedBytes\":%llu",
                      (unsigned long long) s->log_bytes, (unsigned long long) s->dropped_bytes);
        if (log_digest(s, digest))
                n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"logFileBytes\":%llu,\"logSha256\":\"%s\"",
                              (unsigned long long) s->log_file_bytes, digest);
        if (write_tails(s))
                n += snprintf(json + n, sizeof(json) - (size_t) n, ",\"tails\":[%zu,%zu]", tail_size(&s->streams[0]),
                              tail_size(&s->streams[1]));
        snprintf(json + n, sizeof(json) - (size_t) n, ",\"startedAt\":\"%s\",\"finishedAt\":\"%s\"}\n", s->started_at,
                 s->finished_at);
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_STATUS_FILE);
        /* The log must be on disk before the status that says the run is over. */
        if (s->n_pending == 0)
                (void) fdatasync(s->log_fd);
        if (s->status_new_fd < 0)
                return write_file_atomic(path, json, strlen(json), 0600);
        /* Into the blocks allocated at the start: a full disk cannot refuse them. */
        snprintf(tmp, sizeof(tmp), "%s/%s.new", s->run_dir, SHIM_STATUS_FILE);
        errno = EIO; /* a short write says no errno */
        if (pwrite(s->status_new_fd, json, strlen(json), 0) != (ssize_t) strlen(json) ||
            ftruncate(s->status_new_fd, (off_t) strlen(json)) < 0 || fdatasync(s->status_new_fd) < 0 || rename(tmp, path) < 0)
                return -errno;
        close(s->status_new_fd);
        s->status_new_fd = -1;
        return 0;
}

/* status.json.new, with room for the status: made when the disk most likely has room. */
static void allocate_status(Shim *s) {
        char path[4096], blank[SHIM_STATUS_ROOM];

        snprintf(path, sizeof(path), "%s/%s.new", s->run_dir, SHIM_STATUS_FILE);
        s->status_new_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->status_new_fd < 0)
                return;
        /* posix_fallocate() where the file system has it; else blocks written for real. */
        if (posix_fallocate(s->status_new_fd, 0, sizeof(blank)) == 0)
                return;
        memset(blank, ' ', sizeof(blank));
        if (pwrite(s->status_new_fd, blank, sizeof(blank), 0) != (ssize_t) sizeof(blank) || fdatasync(s->status_new_fd) < 0) {
                close(s->status_new_fd);
                s->status_new_fd = -1;
                (void) unlink(path);
        }
}

/* The limits file, if corrald wrote one: key=value lines (shim.h). */
static void read_limits(Shim *s) {
        _cleanup_free_ char *text = NULL;
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_LIMITS_FILE);
        if (read_full_file(path, 4096, &text, NULL) < 0)
                return;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = 0;
                if (streq(line, "lease_file") || streq(line, "cgroup")) {
                        bool cgroup = streq(line, "cgroup");
                        char *dst = cgroup ? s->cgroup : s->lease_path;
                        size_t size = cgroup ? sizeof(s->cgroup) : sizeof(s->lease_path);
                        if (eq[1] == '/' && strlen(eq + 1) < size)
                                strcpy(dst, eq + 1);
                        continue;
                }
                long long v = strtoll(eq + 1, NULL, 10);
                if (v <= 0)
                        continue;
                if (streq(line, "timeout_ms"))
                        s->timeout_ms = v;
                else if (streq(line, "grace_ms"))
                        s->grace_ms = v;
                else if (streq(line, "log_bytes_max"))
                        s->log_bytes_max = (uint64_t) v;
        }
}

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

/* The agent's stdin: the run's stdin file if corrald wrote one, else /dev/null. */
static int open_agent_stdin(const char *run_dir) {
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", run_dir, SHIM_STDIN_FILE);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ENOENT)
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        return fd;
}

/* What the agent's process needs between clone3 and execve. */
typedef struct AgentExec {
        char *const *argv;
        const char *cwd; /* NULL: the shim's own */
        int in, out, err;
        const sigset_t *mask;
        int error_pipe; /* write end, O_CLOEXEC: an exec that fails writes its errno here */
} AgentExec;

/* The agent's process until its execve. It shares the shim's memory (clone3_spawn), so only
 * async-signal-safe calls that change nothing but this process; the shim has no signal
 * handlers that could run here. */
static _noreturn_ void agent_child(void *userdata) {
        const AgentExec *x = userdata;
        int e;

        /* The descriptors are O_CLOEXEC; dup2 onto 0-2 clears that on the copies only. */
        if (setpgid(0, 0) < 0 || dup2(x->in, STDIN_FILENO) < 0 || dup2(x->out, STDOUT_FILENO) < 0 ||
            dup2(x->err, STDERR_FILENO) < 0 || (x->cwd && chdir(x->cwd) < 0))
                goto fail;
        spawn_child_reset_signals(x->mask);
        execvp(x->argv[0], x->argv);
fail:
        e = errno;
        (void) !write(x->error_pipe, &e, sizeof(e));
        _exit(SHIM_EXIT_EXEC_FAILED);
}

/* Start the agent: its own process group, the pipes as stdout/stderr, the shim's signal
 * mask and SIGPIPE undone. Like posix_spawn, the child shares the shim's memory until its
 * execve, but it makes only the few calls the agent needs (posix_spawn resets every one
 * of the 64 signals, a system call each). Returns 0 or the errno of a failed exec. */
static int spawn_agent(Shim *s, char *argv[], const char *cwd, int in, int out, int err, const sigset_t *mask) {
        struct clone_args args = { .exit_signal = SIGCHLD };
        int p[2], e = 0;
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return errno;
        AgentExec x = { .argv = argv, .cwd = cwd, .in = in, .out = out, .err = err, .mask = mask, .error_pipe = p[1] };
        pid = clone3_spawn(&args, agent_child, &x);
        close(p[1]);
        if (pid < 0) {
                close(p[0]);
                return -pid;
        }
        /* EOF once the execve closed the pipe; an errno if the child gave up (and exited). */
        if (read(p[0], &e, sizeof(e)) == (ssize_t) sizeof(e)) {
                (void) waitpid(pid, NULL, 0);
                close(p[0]);
                return e > 0 ? e : EIO;
        }
        close(p[0]);
        s->agent = pid;
        return 0;
}

/* An agent that could not be started ends as a shell's would: the reason on stderr (in the
 * log), exit code 126 (found but not executable) or 127. */
static void agent_not_started(Shim *s, const char *what, int e) {
        char message[512];
        int n;

        n = snprintf(message, sizeof(message), "corral-shim: cannot %s: %s\n", what, strerror(e));
        log_chunk(s, &s->streams[1], message, (size_t) MIN(n, (int) sizeof(message) - 1));
        s->agent = 0;
        s->agent_exited = true;
        s->agent_status = W_EXITCODE(e == EACCES || e == ENOEXEC ? 126 : SHIM_EXIT_EXEC_FAILED, 0);
        (void) iso_time_now(s->finished_at);
}

/* Wait for corrald's go byte on fd 3; SIGTERM while waiting aborts. */
static bool wait_for_go(int sigfd) {
        struct pollfd p[2] = { { .fd = SHIM_FD_GO, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
        char byte;

        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return false;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        if (read(sigfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
                                return false;
                }
                if (p[0].revents) {
                        ssize_t k = read(SHIM_FD_GO, &byte, 1);
                        return k == 1;
                }
        }
}

/* Where a run's cgroup has no cpu controller (the cgroup backend on a machine without it),
 * the kernel shares the CPU between sessions, not cgroups ("autogroup", sched(7)): the new
 * session made above would weigh as much as corrald's, and 100 busy runs would leave corrald
 * 1% of the CPU, its answers hundreds of times slower. At the lowest weight (nice 19, 15
 * against 1,024) about 70 runs weigh what one service does, as all runs together do in
 * corral.slice (CPUWeight=100) under systemd; the CPU is still theirs when nothing else
 * wants it. Inside a cgroup with the cpu controller, the kernel ignores this. A kernel
 * without autogroup has no such file. */
static void lower_session_weight(void) {
        _cleanup_close_ int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0) {
                if (errno != ENOENT)
                        warn("Failed to open /proc/self/autogroup, the run's session keeps its CPU weight: %s", strerror(errno));
                return;
        }
        int r = write_full(fd, SHIM_SESSION_NICE, strlen(SHIM_SESSION_NICE));
        if (r < 0)
                warn("Failed to lower the run's session CPU weight: %s", strerror(-r));
}

int shim_main(int argc, char *argv[]) {
        return shim_run(argc, argv, NULL);
}

/* The agent in its sandbox, from the policy corrald wrote to the run directory. */
static int spawn_sandboxed(Shim *s, char *argv[], int in, int out, int err, const sigset_t *mask, char *what, size_t what_size) {
        _cleanup_free_ char *text = NULL;
        char path[4096], error[256];
        SandboxSpec spec;
        int r;

        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_SANDBOX_FILE);
        r = read_full_file(path, 1024 * 1024, &text, NULL);
        if (r < 0) {
                snprintf(what, what_size, "read the sandbox policy %.256s", path);
                return -r;
        }
        r = sandbox_spec_parse(text, &spec, error, sizeof(error));
        if (r < 0) {
                snprintf(what, what_size, "use the sandbox policy %.256s: %s", path, error);
                return -r;
        }
        return sandbox_spawn(&spec, argv, in, out, err, mask, &s->agent, &s->status_fd, what, what_size);
}

/* SIGCHLD and the stop signals as a signalfd; the old mask goes to the agent. */
static int block_signals(sigset_t *ret_old_mask) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, ret_old_mask);
        (void) signal(SIGPIPE, SIG_IGN);
        return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Forward stop requests, read the agent's status, and copy both streams into the log until
 * the agent has exited and its streams are drained (or have gone quiet). */
static void pump_until_drained(Shim *s, int sigfd) {
        int64_t drain_start = 0, last_data = 0;

        for (;;) {
                struct pollfd p[4]; /* signals, the sandbox init's status, stdout, stderr */
                nfds_t n = 0;
                int timeout = -1;

                timeout = tick(s);
                if (s->agent_exited) {
                        int64_t now = now_ms();
                        if (drain_start == 0)
                                drain_start = last_data = now;
                        if ((s->streams[0].fd < 0 && s->streams[1].fd < 0) || now - drain_start >= DRAIN_MAX_MS ||
                            now - last_data >= DRAIN_IDLE_MS)
                                break;
                        timeout = DRAIN_IDLE_MS;
                }
                p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
                if (s->status_fd >= 0)
                        p[n++] = (struct pollfd){ .fd = s->status_fd, .events = POLLIN };
                for (int i = 0; i < 2; i++)
                        if (s->streams[i].fd >= 0)
                                p[n++] = (struct pollfd){ .fd = s->streams[i].fd, .events = POLLIN };
                if (poll(p, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        warn("poll failed: %m");
                        break;
                }
                if (p[0].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                                if (si.ssi_signo == SIGCHLD)
                                        continue;
                                s->stop_requested = true;
                                /* Stop requests go to the agent's whole process group. */
                                if (!s->agent_exited)
                                        (void) kill(-s->agent, SIGTERM);
                        }
                        reap(s);
                }
                for (nfds_t i = 1; i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        if (p[i].fd == s->status_fd) {
                                read_agent_status(s);
                                continue;
                        }
                        Stream *st = p[i].fd == s->streams[0].fd ? &s->streams[0] : &s->streams[1];
                        (void) pump(s, st);
                        last_data = now_ms();
                }
        }
}

/* Whatever is still in a pipe when draining stops is read now, without waiting. */
static void drain_rest(Shim *s) {
        for (int i = 0; i < 2; i++)
                if (s->streams[i].fd >= 0) {
                        (void) fcntl(s->streams[i].fd, F_SETFL, O_NONBLOCK);
                        while (pump(s, &s->streams[i]) == PUMP_DATA)
                                ;
                        /* Held-back bytes of a split character still belong in the log. */
                        log_chunk(s, &s->streams[i], s->streams[i].buf, s->streams[i].held);
                }
}

/* The run's git workspace, when it has one (shim-workspace.h): its working directory, made
 * before the agent starts. A failure is said in workspace.error, for corrald, and in the
 * run's log. */
static int prepare_workspace(Shim *s) {
        ShimWorkspace w = {};
        char path[4096], msg[1024];
        int r, fd;

        r = shim_workspace_read(s->run_dir, &w);
        if (r <= 0) {
                if (r == 0)
                        return 0;
                snprintf(msg, sizeof(msg), "cannot read the run's workspace file: %s", strerror(-r));
        } else {
                snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_WORKSPACE_LOG_FILE);
                fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
                msg[0] = 0;
                r = shim_workspace_prepare(&w, fd, msg, sizeof(msg));
                if (fd >= 0)
                        close(fd);
                shim_workspace_done(&w);
                if (r >= 0)
                        return 0;
        }
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_WORKSPACE_ERROR_FILE);
        (void) write_file_atomic(path, msg, strlen(msg), 0600);
        size_t n = strlen(msg);
        char line[1100];
        int k = snprintf(line, sizeof(line), "corral-shim: %.*s\n", (int) n, msg);
        log_chunk(s, &s->streams[1], line, (size_t) MIN(k, (int) sizeof(line) - 1));
        return -EIO;
}

static int spawn_with(Shim *s, char **agent_argv, const char *agent_cwd, bool sandboxed, int in, int out[2], int err[2],
                      const sigset_t *old_mask);

/* Open the run's log and the agent's stdin, and start the agent: 0 when it started, else
 * the errno of why not (status.json tells it), or -1 when there is no log to run with. */
static int start_agent(Shim *s, char **agent_argv, const char *agent_cwd, bool sandboxed, int out[2], int err[2],
                       const sigset_t *old_mask) {
        char path[4096];
        int in;

        (void) iso_time_now(s->started_at);
        s->started_ms = now_ms();
        /* The run directory is touched only now: corrald creates it and writes the run's
         * files before it says go (a shim from the spawner starts before that). */
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_LOG_FILE);
        s->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->log_fd < 0) {
                warn("Failed to open %s: %m", path);
                return -1;
        }
        /* A log that holds bytes this shim did not write is hashed by corrald. */
        struct stat st;
        s->log_digest_ok = fstat(s->log_fd, &st) >= 0 && st.st_size == 0 && SHA256_Init(&s->log_digest) == 1;
        read_limits(s);
        if (s->lease_path[0])
                s->lease_until_ms = read_lease(s);
        allocate_status(s);
        in = open_agent_stdin(s->run_dir);
        if (in >= 0 && prepare_workspace(s) < 0) {
                /* Said in the workspace's error file, for corrald: the run could not be launched. */
                close(in);
                close(out[1]);
                close(err[1]);
                s->streams[0].fd = out[0];
                s->streams[1].fd = err[0];
                s->agent = 0;
                s->agent_exited = true;
                s->agent_status = W_EXITCODE(SHIM_EXIT_EXEC_FAILED, 0);
                s->stopped = "workspace";
                (void) iso_time_now(s->finished_at);
                return ECANCELED;
        }
        return spawn_with(s, agent_argv, agent_cwd, sandboxed, in, out, err, old_mask);
}

/* The agent of agent_argv, its stdin in (closed here), the pipes' write ends as its stdout
 * and stderr (closed here: their read ends become the streams). 0 or the errno of why not. */
static int spawn_with(Shim *s, char **agent_argv, const char *agent_cwd, bool sandboxed, int in, int out[2], int err[2],
                      const sigset_t *old_mask) {
        char what[4096];
        int e;

        if (in < 0) {
                e = errno;
                snprintf(what, sizeof(what), "open %s/%s", s->run_dir, SHIM_STDIN_FILE);
        } else if (sandboxed) {
                e = spawn_sandboxed(s, agent_argv, in, out[1], err[1], old_mask, what, sizeof(what));
                close(in);
        } else if (agent_cwd && access(agent_cwd, X_OK) < 0) {
                e = errno;
                snprintf(what, sizeof(what), "enter the working directory '%s'", agent_cwd);
                close(in);
        } else {
                e = spawn_agent(s, agent_argv, agent_cwd, in, out[1], err[1], old_mask);
                snprintf(what, sizeof(what), "execute '%s'", agent_argv[0]);
                close(in);
        }
        close(out[1]);
        close(err[1]);
        s->streams[0].fd = out[0];
        s->streams[1].fd = err[0];
        if (e != 0)
                agent_not_started(s, what, e);
        return e;
}

/* Whether the stream's tail holds text. */
static bool tail_contains(const Stream *st, const char *text) {
        size_t n = strlen(text), size = st->tail_full ? SHIM_TAIL_MAX : st->tail_end;
        _cleanup_free_ char *flat = NULL;

        if (!st->tail || n == 0 || n > size || !(flat = malloc(size)))
                return false;
        /* Oldest first, as write_tails() writes it. */
        size_t old = st->tail_full ? SHIM_TAIL_MAX - st->tail_end : 0;
        memcpy(flat, st->tail + st->tail_end, old);
        memcpy(flat + old, st->tail, st->tail_end);
        return memmem(flat, size, text, n) != NULL;
}

static bool again_file_exists(const Shim *s) {
        char path[4096];

        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_AGAIN_FILE);
        return access(path, F_OK) >= 0;
}

/* The again file's command line, when the agent that just ended could not resume its
 * session (shim.h): NULL when there is none, or the agent ended otherwise. *ret_text holds
 * the strings the array points into. */
static char **again_argv(Shim *s, char **ret_text) {
        _cleanup_free_ char *text = NULL;
        char path[4096], **argv;
        size_t size, n = 0;

        *ret_text = NULL;
        if (s->again || s->stopped || s->stop_requested || !s->agent_exited || !WIFEXITED(s->agent_status) ||
            WEXITSTATUS(s->agent_status) == 0)
                return NULL;
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, SHIM_AGAIN_FILE);
        if (read_full_file(path, 256 * 1024, &text, &size) < 0 || size == 0 || text[size - 1] != '\0')
                return NULL;
        if (!tail_contains(&s->streams[1], text) && !tail_contains(&s->streams[0], text))
                return NULL;
        for (size_t i = strlen(text) + 1; i < size; i += strlen(text + i) + 1)
                n++;
        if (n == 0 || !(argv = calloc(n + 1, sizeof(char *))))
                return NULL;
        n = 0;
        for (size_t i = strlen(text) + 1; i < size; i += strlen(text + i) + 1)
                argv[n++] = text + i;
        *ret_text = TAKE_PTR(text);
        return argv;
}

/* The agent could not resume its session: once more, afresh, in the same run. 0 when it
 * started (or was not started, which status.json says as for the first), -1 when the shim
 * cannot go on. */
static int start_again(Shim *s, char **argv, const char *agent_cwd, bool sandboxed, const sigset_t *old_mask) {
        static const char note[] = SHIM_AGAIN_NOTE "\n";
        int out[2], err[2];

        warn("The agent could not resume its session: starting it once more, afresh.");
        log_chunk(s, &s->streams[1], note, sizeof(note) - 1);
        /* What the first start left behind goes first (a sandbox's went with its init), and
         * with it the pipes it may still hold open. */
        if (s->agent > 0)
                (void) kill(-s->agent, SIGKILL);
        for (int i = 0; i < 2; i++)
                if (s->streams[i].fd >= 0) {
                        close(s->streams[i].fd);
                        s->streams[i].fd = -1;
                }
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                warn("Failed to set up the agent's pipes: %m");
                return -1;
        }
        s->again = true;
        s->agent = 0;
        s->agent_exited = false;
        s->agent_status = 0;
        s->finished_at[0] = 0;
        for (int i = 0; i < 2; i++)
                s->streams[i].held = 0;
        (void) spawn_with(s, argv, agent_cwd, sandboxed, open_agent_stdin(s->run_dir), out, err, old_mask);
        return 0;
}

int shim_run(int argc, char *argv[], const char *agent_cwd) {
        _cleanup_free_ char *line = NULL;
        Shim s = { .log_fd = -1, .status_fd = -1, .status_new_fd = -1 };
        sigset_t old_mask;
        int out[2], err[2], sigfd, e;
        char pidline[32];
        /* Decide before anything is opened, which could otherwise land on fd 3 or 4. */
        bool gated = fd_is_open(SHIM_FD_GO), reporting = fd_is_open(SHIM_FD_REPORT);
        bool sandboxed = argc > 1 && streq(argv[1], "--sandbox");

        if (gated)
                (void) fcntl(SHIM_FD_GO, F_SETFD, FD_CLOEXEC);
        if (reporting)
                (void) fcntl(SHIM_FD_REPORT, F_SETFD, FD_CLOEXEC);

        if (sandboxed) {
                argc--;
                argv++;
        }
        if (argc < 3) {
                warn("usage: corral-shim [--sandbox] RUN_DIR AGENT [ARGS...]");
                return 2;
        }
        s.run_dir = argv[1];
        s.streams[0].name = "stdout";
        s.streams[0].tail_file = SHIM_STDOUT_TAIL_FILE;
        s.streams[1].name = "stderr";
        s.streams[1].tail_file = SHIM_STDERR_TAIL_FILE;

        /* Out of corrald's session (a Ctrl-C there must not reach the run), and the parent
         * of every orphan the agent leaves, so they are reaped here. */
        (void) setsid();
        lower_session_weight();
        /* The agent gets the usual soft limit of open files back (corrald raised its own to
         * hold many runs): a program that still uses select() breaks above FD_SETSIZE. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur > FD_SETSIZE) {
                nofile.rlim_cur = FD_SETSIZE;
                (void) setrlimit(RLIMIT_NOFILE, &nofile);
        }
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                warn("Failed to become a child subreaper, ignoring: %m");

        sigfd = block_signals(&old_mask);
        if (sigfd < 0) {
                warn("signalfd failed: %m");
                return 1;
        }

        line = malloc(shim_line_max(READ_MAX + 4));
        s.line = line;
        if (!s.line || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
                warn("Failed to set up the agent's pipes: %m");
                return 1;
        }

        /* Everything is ready; the agent does not exist until corrald says go (its row then
         * names this shim and the run's place, so no crash can lose track of the agent). */
        if (gated) {
                bool go = wait_for_go(sigfd);
                close(SHIM_FD_GO);
                if (!go) {
                        warn("Launch aborted before the agent started.");
                        return 1;
                }
        }
        e = start_agent(&s, argv + 2, agent_cwd, sandboxed, out, err, &old_mask);
        if (e < 0)
                return 1;
        if (e == 0 && reporting) {
                snprintf(pidline, sizeof(pidline), "%d\n", (int) s.agent);
                (void) write_full(SHIM_FD_REPORT, pidline, strlen(pidline));
        }
        /* Kept open while the agent may be started again (there is an again file): its second
         * pid goes there too. Else closed now: corrald keeps a descriptor a run no longer. */
        if (reporting && (e != 0 || !again_file_exists(&s))) {
                close(SHIM_FD_REPORT);
                reporting = false;
        }

        pump_until_drained(&s, sigfd);
        drain_rest(&s);
        reap(&s);

        _cleanup_free_ char *again_text = NULL;
        _cleanup_free_ char **again = again_argv(&s, &again_text);
        if (again) {
                if (start_again(&s, again, agent_cwd, sandboxed, &old_mask) < 0)
                        return 1;
                if (reporting && s.agent > 0) {
                        snprintf(pidline, sizeof(pidline), "%d\n", (int) s.agent);
                        (void) write_full(SHIM_FD_REPORT, pidline, strlen(pidline));
                }
                pump_until_drained(&s, sigfd);
                drain_rest(&s);
                reap(&s);
        }
        if (reporting)
                close(SHIM_FD_REPORT);

        /* Output still held back gets a little longer for the disk to have room again;
         * then what is left is counted as lost. */
        for (int i = 0; i < PENDING_FLUSH_TRIES && !flush_pending(&s); i++)
                (void) usleep(1000 * 1000);
        if (s.n_pending > 0) {
                s.dropped_bytes += s.pending_raw;
                s.n_pending = 0;
        }
        /* The exit status is not given up to a full disk: corrald waits for this shim, and
         * finds the run still running, until it is written. Any other failure (the run
         * directory is gone, say) ends the shim, as it always did. */
        for (unsigned i = 0;; i++) {
                int r = write_status(&s);
                if (r >= 0)
                        break;
                if (r != -ENOSPC && r != -EDQUOT) {
                        warn("Failed to write %s/%s: %s", s.run_dir, SHIM_STATUS_FILE, strerror(-r));
                        free(s.pending);
                        return 1;
                }
                if (i == 0)
                        warn("Failed to write %s/%s, trying again every second: %s", s.run_dir, SHIM_STATUS_FILE, strerror(-r));
                (void) usleep(1000 * 1000);
        }
        free(s.pending);
        free(s.streams[0].tail);
        free(s.streams[1].tail);
        return 0;
}
