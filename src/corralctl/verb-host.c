/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * corralctl host list|drain|resume: the corralds sharing the database, the drain of one and
 * its resume.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "client.h"
#include "corralctl.h"
#include "output.h"

static const Column host_columns[] = {
        { "ID", "id", 40 },
        { "NAME", "name", 24 },
        { "STATUS", "status", 0 },
        { "EPOCH", "epoch", 0 },
        { "LEASE UNTIL", "leaseExpiresAt", 0 },
        { "RUNS", "runningRuns", 0 },
        { "MAX", "maxRuns", 0 },
        { "THIS", "self", 0 },
        {},
};

int verb_host_list(Ctl *ctl, int argc, char *argv[]) {
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "host", "list", argc, argv, NULL, NULL, NULL, 0);
        if (first < 0)
                return -1 - first;
        r = client_call(ctl, "GET", "/api/hosts?limit=1000", NULL, &reply);
        if (r == EXIT_OK)
                output_list(ctl, reply, host_columns);
        cJSON_Delete(reply);
        return r;
}

/* POST /api/hosts/HOST/what. */
static int host_post(Ctl *ctl, const char *what, int argc, char *argv[]) {
        _cleanup_free_ char *path = NULL;
        cJSON *reply = NULL;
        int first, r;

        first = ctl_args(ctl, "host", what, argc, argv, NULL, NULL, NULL, 1);
        if (first < 0)
                return -1 - first;
        /* Host ids are letters, digits and ._:- (corrald.conf(5), host-id): nothing to escape. */
        if (strpbrk(argv[first], "/?#%& ")) {
                fprintf(stderr, "corralctl host %s: '%s' is no host id\n", what, argv[first]);
                return EXIT_USAGE;
        }
        if (asprintf(&path, "/api/hosts/%s/%s", argv[first], what) < 0)
                return EXIT_API_ERROR;
        r = client_call(ctl, "POST", path, NULL, &reply);
        if (r == EXIT_OK)
                output_reply(ctl, reply);
        cJSON_Delete(reply);
        return r;
}

int verb_host_drain(Ctl *ctl, int argc, char *argv[]) {
        return host_post(ctl, "drain", argc, argv);
}

int verb_host_resume(Ctl *ctl, int argc, char *argv[]) {
        return host_post(ctl, "resume", argc, argv);
}
