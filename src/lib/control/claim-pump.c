/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "control/claim-pump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/hashmap.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "control/claim.h"
#include "control/host.h"
#include "store/queries.h"

/* How long one turn of the loop claims, or launches, before it lets the rest run. */
#define CLAIM_SLICE_USEC (20 * USEC_PER_SEC / 1000)
#define LAUNCH_SLICE_USEC (10 * USEC_PER_SEC / 1000)
/* How long a claim that found the database busy waits before it is made again: the write
 * lock was waited for a busy timeout already, and another host holds it meanwhile. Twice as
 * long after each round that found it busy again, up to the most: a database that is gone
 * (each try a connection attempt) is not tried by every agent ten times a second. */
#define CLAIM_RETRY_USEC (100 * USEC_PER_SEC / 1000)
#define CLAIM_RETRY_MAX_USEC (5 * USEC_PER_SEC)

/* One agent's claimed runs, not launched yet from runs[launched] on. */
typedef struct Claimed {
        Agent agent;
        Run *runs;
        size_t n, launched;
} Claimed;

typedef struct ClaimPump {
        sd_event_source *source;
        sd_event_source *retry_timer; /* moves again to wanted, retry_usec after the first */
        uint64_t retry_usec;
        char **wanted; /* agents to claim for, oldest first */
        char **again; /* agents whose claim found the database busy */
        Claimed *queue; /* to launch, oldest first: queue[first] onward */
        size_t n_queue, first;
} ClaimPump;

static void claimed_done(Claimed *c) {
        entity_array_free(&run_entity, c->runs, c->n);
        entity_done(&agent_entity, &c->agent);
        *c = (Claimed){};
}

/* Launch the next claimed run: unless it changed since its claim (a cancel came between),
 * or this host fenced itself meanwhile (the runs it claimed are others' to take over). */
static void launch_next(Control *ctl, ClaimPump *p) {
        Claimed *c = &p->queue[p->first];
        const Run *run = &c->runs[c->launched++];
        _cleanup_(run_donep) Run now = {};
        int r;

        if (host_fenced(ctl))
                log_debug("Run %s: not launched, this host fenced itself since it claimed it.", run->id);
        else if ((r = store_get(ctl->store, &run_entity, run->id, &now)) < 0)
                /* Left claimed: the sweep finds it unlaunched, lost, and retries it once. */
                log_warning_errno(r, "Run %s: cannot read it again before its launch, not launched: %m", run->id);
        else if (now.status == RUN_RUNNING && streq_ptr(now.host_id, host_self_id(ctl)) && now.shim_pid == INT_NULL)
                claim_launch_one(ctl, &c->agent, run);
        else
                log_debug("Run %s: not launched, it changed since it was claimed.", run->id);
        if (c->launched == c->n) {
                claimed_done(c);
                p->first++;
        }
        if (p->first == p->n_queue) {
                p->queue = mfree(p->queue);
                p->n_queue = p->first = 0;
        }
}

static ClaimPump *pump(Control *ctl);
static void arm(ClaimPump *p);

static bool wanted_empty(const ClaimPump *p) {
        return !p->wanted || !p->wanted[0];
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;
        ClaimPump *p = ctl->claim_pump;

        STRV_FOREACH(a, p->again) {
                if (strv_contains((const char *const *) p->wanted, *a))
                        continue;
                if (strv_push(&p->wanted, *a) < 0) {
                        (void) log_oom(); /* the sweep claims the rest */
                        break;
                }
        }
        p->again = strv_free(p->again);
        if (!wanted_empty(p))
                arm(p);
        return 0;
}

/* s due usec from now, once. */
static int arm_in(sd_event_source *s, uint64_t usec) {
        int r = sd_event_source_set_time_relative(s, usec);
        return r < 0 ? r : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* Claim for the agent again in a while: its claim found the database busy. Were nobody to
 * ask again, its runs would wait queued for the sweep. */
static void claim_again(Control *ctl, const char *agent_id) {
        ClaimPump *p = pump(ctl);
        int r;

        if (!p || (!strv_contains((const char *const *) p->again, agent_id) && strv_push(&p->again, agent_id) < 0)) {
                (void) log_oom();
                return;
        }
        if (sd_event_source_get_enabled(p->retry_timer, NULL) > 0)
                return; /* armed already, for the earlier ones */
        p->retry_usec = p->retry_usec == 0 ? CLAIM_RETRY_USEC : MIN(2 * p->retry_usec, CLAIM_RETRY_MAX_USEC);
        r = arm_in(p->retry_timer, p->retry_usec);
        if (r < 0)
                log_error_errno(r, "Failed to arm the claims' retry timer; the sweep claims what is queued: %m");
}

/* claim_agent(), made again later when the database was busy. */
static void claim_or_again(Control *ctl, const char *agent_id, Agent *agent, Run **ret, size_t *ret_n) {
        int r = claim_agent(ctl, agent_id, agent, ret, ret_n);

        if (r == -EAGAIN)
                claim_again(ctl, agent_id);
        else if (r >= 0 && ctl->claim_pump)
                ctl->claim_pump->retry_usec = 0; /* the database answers again */
}

static void claim_next(Control *ctl, ClaimPump *p) {
        _cleanup_free_ char *id = p->wanted[0];
        Claimed c = {};

        /* Out of the list before the claim: what the claim does may ask for it again. */
        memmove(p->wanted, p->wanted + 1, strv_length(p->wanted) * sizeof(char *));
        claim_or_again(ctl, id, &c.agent, &c.runs, &c.n);
        if (c.n == 0) {
                claimed_done(&c);
                return;
        }
        Claimed *q = reallocarray(p->queue, p->n_queue + 1, sizeof(Claimed));
        if (!q) {
                /* Launched now rather than lost: its claim is committed. */
                claim_launch(ctl, &c.agent, c.runs, c.n);
                entity_done(&agent_entity, &c.agent);
                return;
        }
        p->queue = q;
        p->queue[p->n_queue++] = c;
}

/* A timer due at once, not a defer source: a defer source armed again from its own
 * callback stays pending from its first turn on, the oldest of its priority, which sd-event
 * dispatches before every other (the API waited seconds for a thousand launches). A timer
 * is pending anew each time it elapses, and waits its turn behind the API and the runs. */
static void arm(ClaimPump *p) {
        int r = arm_in(p->source, 0);
        if (r < 0)
                log_error_errno(r, "Failed to arm the claims' event source; the sweep claims what is queued: %m");
}

static int on_pump(sd_event_source *s, uint64_t usec, void *userdata) {
        Control *ctl = userdata;
        ClaimPump *p = ctl->claim_pump;
        uint64_t start = now_mono_usec();

        if (!wanted_empty(p)) {
                /* The launches at a later turn, once every claim is made. */
                do
                        claim_next(ctl, p);
                while (!wanted_empty(p) && now_mono_usec() - start < CLAIM_SLICE_USEC);
        } else
                while (p->first < p->n_queue) {
                        launch_next(ctl, p);
                        if (now_mono_usec() - start >= LAUNCH_SLICE_USEC)
                                break;
                }
        if (p->first < p->n_queue || !wanted_empty(p))
                arm(p);
        return 0;
}

static ClaimPump *pump(Control *ctl) {
        int r;

        if (ctl->claim_pump)
                return ctl->claim_pump;
        ClaimPump *p = calloc(1, sizeof(ClaimPump));
        if (!p)
                return NULL;
        r = sd_event_add_time_relative(ctl->event, &p->source, CLOCK_MONOTONIC, 0, 1, on_pump, ctl);
        if (r >= 0)
                r = sd_event_add_time_relative(ctl->event, &p->retry_timer, CLOCK_MONOTONIC, CLAIM_RETRY_USEC, 0, on_retry, ctl);
        if (r < 0) {
                log_error_errno(r, "Failed to add the claims' event sources: %m");
                sd_event_source_disable_unref(p->source);
                free(p);
                return NULL;
        }
        (void) sd_event_source_set_description(p->source, "claim-pump");
        (void) sd_event_source_set_description(p->retry_timer, "claim-retry");
        (void) sd_event_source_set_enabled(p->source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(p->retry_timer, SD_EVENT_OFF);
        ctl->claim_pump = p;
        return p;
}

void claim_start_next(Control *ctl, const char *agent_id) {
        _cleanup_(agent_donep) Agent agent = {};
        Run *claimed;
        size_t n;

        claim_or_again(ctl, agent_id, &agent, &claimed, &n);
        claim_launch(ctl, &agent, claimed, n);
}

void claim_pump_want(Control *ctl, const char *agent_id) {
        ClaimPump *p = pump(ctl);

        if (!p || (!strv_contains((const char *const *) p->wanted, agent_id) && strv_push(&p->wanted, agent_id) < 0)) {
                /* Without memory to ask for later: now. */
                claim_start_next(ctl, agent_id);
                return;
        }
        arm(p);
}

/* Where in a list of n this host starts: hosts that all go through the same list from its
 * start would each wait for the write lock on the agent another is claiming for, and then
 * find its runs claimed. */
static size_t start_of(const char *host_id, size_t n) {
        return n > 0 ? (size_t) (hashmap_string_hash(strempty(host_id)) % n) : 0;
}

int claim_pump_want_all(Control *ctl) {
        Agent *agents;
        size_t n, start;
        int r;

        r = store_agents_with_queued_runs(ctl->store, &agents, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list the agents with queued runs: %m");
        start = start_of(host_self_id(ctl), n);
        for (size_t i = 0; i < n; i++)
                claim_pump_want(ctl, agents[(start + i) % n].id);
        entity_array_free(&agent_entity, agents, n);
        return 0;
}

void claim_pump_free(Control *ctl) {
        ClaimPump *p = ctl->claim_pump;

        if (!p)
                return;
        if (p->first < p->n_queue)
                log_info("Launching the runs claimed before the stop.");
        while (p->first < p->n_queue)
                launch_next(ctl, p);
        strv_free(p->wanted);
        strv_free(p->again);
        sd_event_source_disable_unref(p->source);
        sd_event_source_disable_unref(p->retry_timer);
        free(p);
        ctl->claim_pump = NULL;
}
