/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* process: any command, with its arguments, environment, directory and optional stdin. */
#include "control/adapter-internal.h"

const AdapterOps adapter_process_ops = {
        .type = ADAPTER_PROCESS,
        .default_grace_sec = ADAPTER_DEFAULT_GRACE_SEC,
};
