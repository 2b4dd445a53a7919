/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The timer-heartbeat scheduler.
 */
#include "control/scheduler.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "store/queries.h"
#include "control/wakeup.h"
#include "store/jsonmap.h"
#include "basic/log.h"
#include "control/control.h"
#include "basic/time-util.h"

/* Configuration changes are noticed within this long even without a reschedule. */
#define SCHEDULER_MAX_SLEEP_USEC (60 * (int64_t) USEC_PER_SEC)

typedef struct LastWake {
        char *agent_id;
        int64_t usec;
} LastWake;

struct Scheduler {
        Control *ctl;
        sd_event_source *timer;
        /* When each agent was last woken by the timer: lastHeartbeatAt moves only when a run
         * ends, so without this a long run would be woken again on every tick. */
        LastWake *last;
        size_t n_last;
};

static int64_t *last_wake(Scheduler *s, const char *agent_id, bool create) {
        for (size_t i = 0; i < s->n_last; i++)
                if (streq(s->last[i].agent_id, agent_id))
                        return &s->last[i].usec;
        if (!create)
                return NULL;
        LastWake *t = realloc(s->last, (s->n_last + 1) * sizeof(LastWake));
        if (!t)
                return NULL;
        s->last = t;
        t[s->n_last].agent_id = strdup(agent_id);
        t[s->n_last].usec = 0;
        if (!t[s->n_last].agent_id)
                return NULL;
        return &t[s->n_last++].usec;
}

/* intervalSec of an agent whose timer heartbeat is on, else 0. */
static int64_t interval_usec(const Agent *a) {
        _cleanup_json_ cJSON *rc = cJSON_Parse(a->runtime_config ?: "{}");
        const cJSON *hb = cJSON_GetObjectItemCaseSensitive(rc, "heartbeat");
        const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(hb, "enabled"),
                    *interval = cJSON_GetObjectItemCaseSensitive(hb, "intervalSec");

        if (!cJSON_IsTrue(enabled) || !cJSON_IsNumber(interval) || !isfinite(interval->valuedouble) || interval->valuedouble < 1)
                return 0;
        return (int64_t) fmin(interval->valuedouble, 365.0 * 24 * 3600) * (int64_t) USEC_PER_SEC;
}

static void wake(Scheduler *s, const Agent *a) {
        _cleanup_free_ char *run_id = NULL, *reason = NULL;
        WakeRequest w = {
                .source = WAKEUP_SOURCE_TIMER,
                .trigger_detail = TRIGGER_SYSTEM,
                .reason = "heartbeat_timer",
                .context_json = "{\"source\":\"scheduler\",\"reason\":\"interval_elapsed\"}",
                .actor_type = ACTOR_SYSTEM,
                .actor_id = "heartbeat_scheduler",
        };
        WakeOutcome outcome;
        int r;

        r = wakeup_request(s->ctl, a->id, &w, &outcome, &run_id, &reason);
        if (r < 0 && r != -EPERM)
                log_warning_errno(r, "Timer heartbeat of agent %s failed, ignoring: %m", a->id);
        else if (r >= 0)
                log_debug("Timer heartbeat of agent %s: %s.", a->id, wake_outcome_to_string(outcome));
}

static int on_tick(sd_event_source *src, uint64_t usec, void *userdata);

/* Wake every agent that is due and arm the timer for the next one. */
static void tick(Scheduler *s) {
        Control *ctl = s->ctl;
        int64_t now = now_usec(), next = now + SCHEDULER_MAX_SLEEP_USEC;
        Agent *items;
        size_t n;
        int r;

        r = store_agents_with_timer(ctl->store, &items, &n);
        if (r < 0) {
                log_error_errno(r, "Failed to list agents for timer heartbeats: %m");
                n = 0;
                items = NULL;
        }
        for (size_t i = 0; i < n; i++) {
                const Agent *a = &items[i];
                int64_t interval = interval_usec(a), baseline, *last;

                if (interval <= 0)
                        continue;
                if (iso_time_parse(a->last_heartbeat_at ?: a->created_at, &baseline) < 0)
                        baseline = now;
                last = last_wake(s, a->id, true);
                if (last && *last > baseline)
                        baseline = *last;
                if (now - baseline >= interval) {
                        wake(s, a);
                        if (last)
                                *last = now;
                        baseline = now;
                }
                if (baseline + interval < next)
                        next = baseline + interval;
        }
        entity_array_free(&agent_entity, items, n);

        int64_t delay = next - now_usec();
        if (delay < (int64_t) USEC_PER_SEC)
                delay = (int64_t) USEC_PER_SEC;
        r = sd_event_source_set_time_relative(s->timer, (uint64_t) delay);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to arm the heartbeat timer: %m");
}

static int on_tick(sd_event_source *src, uint64_t usec, void *userdata) {
        tick(userdata);
        return 0;
}

void scheduler_reschedule(Scheduler *s) {
        if (s)
                tick(s);
}

int scheduler_new(Control *ctl, Scheduler **ret) {
        Scheduler *s = calloc(1, sizeof(Scheduler));
        int r;

        if (!s)
                return -ENOMEM;
        s->ctl = ctl;
        r = sd_event_add_time_relative(ctl->event, &s->timer, CLOCK_MONOTONIC, 0, 0, on_tick, s);
        if (r < 0) {
                free(s);
                return log_error_errno(r, "Failed to add the heartbeat timer: %m");
        }
        (void) sd_event_source_set_description(s->timer, "heartbeat-timer");
        *ret = s;
        return 0;
}

Scheduler *scheduler_free(Scheduler *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->timer);
        for (size_t i = 0; i < s->n_last; i++)
                free(s->last[i].agent_id);
        free(s->last);
        free(s);
        return NULL;
}
