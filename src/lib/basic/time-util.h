/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clocks and timestamps. */
#pragma once

#include <stdint.h>

#define ISO_TIME_MAX 32
#define USEC_PER_SEC UINT64_C(1000000)

/* Wall clock in microseconds since the epoch. */
int64_t now_usec(void);
/* CLOCK_MONOTONIC in microseconds: for intervals, which the wall clock's jumps must not bend. */
uint64_t now_mono_usec(void);

/* "2026-11-25T12:00:00.123Z" (always UTC, millisecond precision), so text order is time order. */
int iso_time_format(int64_t usec, char ret[static ISO_TIME_MAX]);
int iso_time_now(char ret[static ISO_TIME_MAX]);
int iso_time_parse(const char *s, int64_t *ret_usec);
