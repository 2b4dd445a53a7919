/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A Prometheus histogram: observations counted into fixed buckets (cumulative when printed),
 * with their count and sum, printed in the text exposition format.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HISTOGRAM_BUCKETS_MAX 16

typedef struct Histogram {
        const double *bounds; /* upper bounds, ascending; +Inf is implied */
        size_t n_bounds;
        uint64_t counts[HISTOGRAM_BUCKETS_MAX]; /* observations <= bounds[i] and > bounds[i - 1] */
        uint64_t count;
        double sum;
} Histogram;

void histogram_observe(Histogram *h, double value);

/* "# HELP", "# TYPE" and the name_bucket{le=...}, name_sum and name_count lines. */
void histogram_print(const Histogram *h, FILE *f, const char *name, const char *help);
