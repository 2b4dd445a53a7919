/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shim spawner's request parser: what corrald sends it over its socket. */
#include "fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/shim-spawner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ShimSpawnRequest req = {};
        /* The parser works in place, on a buffer as large as what was received. */
        char *buf = malloc(size + 1);

        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = 0;
        if (shim_spawn_request_parse(buf, size, &req) >= 0)
                shim_spawn_request_done(&req);
        free(buf);
        return 0;
}
