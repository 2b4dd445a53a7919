/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging: plain lines on stderr, or structured entries in the journal when
 * stderr is connected to it (JOURNAL_STREAM), so extra KEY=value fields such as
 * CORRAL_RUN_ID can be matched with journalctl.
 */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "basic/macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO, /* journal when JOURNAL_STREAM matches stderr, else stderr */
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
} LogTarget;

void log_setup(const char *identifier, LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Returns -abs(error) when error != 0, else 0, so callers can "return log_error_errno(r, ...)".
 * fields is NULL or a NULL-terminated list of "KEY=value" strings for the journal. */
int log_internal(int level, int error, const char *const *fields, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...) log_internal(level, error, NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_fields(level, fields, ...) log_internal(level, 0, fields, __FILE__, __LINE__, __func__, __VA_ARGS__)

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
