/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clocks and timestamps. */
#include "basic/time-util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"

int64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t now_mono_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int iso_time_format(int64_t usec, char ret[static ISO_TIME_MAX]) {
        time_t sec = (time_t) (usec / 1000000);
        struct tm tm;

        if (usec < 0 || !gmtime_r(&sec, &tm))
                return -EINVAL;
        if (tm.tm_year + 1900 > 9999)
                return -ERANGE;
        snprintf(ret, ISO_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
                 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int) ((usec % 1000000) / 1000));
        return 0;
}

int iso_time_now(char ret[static ISO_TIME_MAX]) {
        return iso_time_format(now_usec(), ret);
}

int iso_time_parse(const char *s, int64_t *ret_usec) {
        struct tm tm = {};
        const char *p;
        int64_t frac = 0;
        int digits = 0;

        if (!s)
                return -EINVAL;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') {
                for (p++; isdigit((unsigned char) *p); p++, digits++)
                        if (digits < 6)
                                frac = frac * 10 + (*p - '0');
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 6; digits++)
                        frac *= 10;
        }
        if (!streq(p, "Z"))
                return -EINVAL;

        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret_usec = (int64_t) t * 1000000 + frac;
        return 0;
}
