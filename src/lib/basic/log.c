/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one logging implementation. %m in a format string expands to the
 * error passed in, as in systemd.
 */
#include "basic/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "basic/util.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_STDERR;
static const char *program = "corral";

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(const char *identifier, LogTarget t) {
        if (identifier)
                program = identifier;
        if (t == LOG_TARGET_AUTO)
                t = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        target = t;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(s, level_names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (streq(s, "warn"))
                return LOG_WARNING;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

static void log_to_journal(int level, int error, const char *const *fields, const char *file, int line, const char *func,
                           const char *message) {
        char prio[32], codeline[32], errnobuf[32];
        _cleanup_free_ char *msg = NULL, *codefile = NULL, *codefunc = NULL;
        struct iovec iov[64];
        size_t n = 0;

        msg = strprintf("MESSAGE=%s", message);
        codefile = strprintf("CODE_FILE=%s", file);
        codefunc = strprintf("CODE_FUNC=%s", func);
        if (!msg || !codefile || !codefunc)
                return;
        snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
        snprintf(codeline, sizeof(codeline), "CODE_LINE=%d", line);

#define IOV(s) (struct iovec){ .iov_base = (void *) (s), .iov_len = strlen(s) }
        iov[n++] = IOV(msg);
        iov[n++] = IOV(prio);
        iov[n++] = IOV(codefile);
        iov[n++] = IOV(codeline);
        iov[n++] = IOV(codefunc);
        if (error != 0) {
                snprintf(errnobuf, sizeof(errnobuf), "ERRNO=%d", abs(error));
                iov[n++] = IOV(errnobuf);
        }
        for (size_t i = 0; fields && fields[i] && n < ELEMENTSOF(iov); i++)
                iov[n++] = IOV(fields[i]);
#undef IOV
        (void) sd_journal_sendv(iov, (int) n);
}

int log_internal(int level, int error, const char *const *fields, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[4096];
        va_list ap;
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        if (level > max_level)
                goto out;

        errno = error; /* for %m */
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (target == LOG_TARGET_JOURNAL)
                log_to_journal(level, error, fields, file, line, func, buf);
        else if (level <= LOG_WARNING)
                fprintf(stderr, "%s: %s: %s\n", program, level_names[level], buf);
        else
                fprintf(stderr, "%s: %s\n", program, buf);
out:
        errno = saved_errno;
        return error ? -error : 0;
}
