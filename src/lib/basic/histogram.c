/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "basic/histogram.h"

#include <inttypes.h>

void histogram_observe(Histogram *h, double value) {
        size_t i = 0;

        while (i < h->n_bounds && value > h->bounds[i])
                i++;
        if (i < h->n_bounds)
                h->counts[i]++;
        h->count++;
        h->sum += value;
}

void histogram_print(const Histogram *h, FILE *f, const char *name, const char *help) {
        uint64_t cumulative = 0;

        fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
        for (size_t i = 0; i < h->n_bounds; i++) {
                cumulative += h->counts[i];
                fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, h->bounds[i], cumulative);
        }
        fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n", name, h->count, name, h->sum, name,
                h->count);
}
