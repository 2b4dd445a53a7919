/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coding CLIs' output parsers: every line of the input through claude's and codex's
 * parser, as a CLI under a hostile model's control may print it, then the usage JSON made
 * of what they kept (every number in it must be one it can hold).
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/cli-output.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const AdapterType types[] = { ADAPTER_CLAUDE_LOCAL, ADAPTER_CODEX_LOCAL };

        for (size_t t = 0; t < 2; t++) {
                CliOutput o = {};
                const char *p = (const char *) data, *end = p + size;

                while (p < end) {
                        const char *nl = memchr(p, '\n', (size_t) (end - p));
                        size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
                        (void) cli_output_feed_line(&o, types[t], p, len);
                        p += len + 1;
                }
                free(cli_output_usage_json(&o));
                cli_output_done(&o);
        }
        return 0;
}
