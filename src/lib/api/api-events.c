/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GET /api/events (corrald(8), EVENTS): server-sent events of what changes — runs' and
 * agents' statuses, issues, comments, wakeups — as the store's triggers record them, in
 * order, each with its id. A client that reconnects with Last-Event-ID (or ?after=) is
 * given what came after it, from the database. An agent sees its own company's only.
 *
 * The subscribers that are caught up share one read of what is new, after every turn of
 * the loop that did anything; one that is behind (a reconnect) reads its own until it is
 * caught up. What waits for a client is bounded (API_STREAM_BUFFER_MAX): a client that
 * falls that far behind is told so, in a last event, and dropped; none slows the loop.
 *
 * A client may also ask for runs' output (?logs=, run or agent ids): run.log events, sent
 * as the supervisor reads the output, live only. They have no id, so a reconnect resumes
 * the stored events; what output it missed is in GET /api/heartbeat-runs/:id/log.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api-common.h"
#include "api/api.h"
#include "basic/log.h"
#include "basic/macro.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/utf8.h"
#include "basic/util.h"
#include "store/events.h"
#include "store/jsonmap.h"
#include "store/model.h"
#include "store/queries.h"
#include "supervise/supervisor.h"

/* Events read at once, for all or for one subscriber behind. */
#define EVENTS_BATCH 500
/* How long what changed may wait to go out with what follows it (on_post()). */
#define EVENTS_COALESCE_USEC (USEC_PER_SEC / 100)
/* A comment line this often keeps proxies from closing the stream, and finds clients gone. */
#define EVENTS_KEEPALIVE_USEC (5 * USEC_PER_SEC)
/* Runs and agents one client may follow the output of. */
#define EVENTS_LOG_IDS_MAX 64

typedef struct Subscriber {
        ApiStream *stream;
        char *company_id; /* only its events; NULL: all */
        char **types; /* only these types; NULL: all */
        int64_t cursor; /* the last event it was given */
        bool follow; /* false: the stream ends once it is caught up */
        char **log_ids; /* the runs and agents whose output it is given; NULL: none */
        struct Subscriber *next;
} Subscriber;

/* A live run whose output some subscriber asked for, and what it is given with. */
typedef struct LogWatch {
        char *run_id, *agent_id, *company_id;
        struct LogWatch *next;
} LogWatch;

typedef struct EventHub {
        Control *ctl;
        Subscriber *subscribers;
        LogWatch *watches;
        int64_t delivered; /* what every caught-up subscriber has been given */
        sd_event_source *post, *coalesce, *keepalive;
} EventHub;

static Subscriber *subscriber_free(Subscriber *sub) {
        if (!sub)
                return NULL;
        api_stream_unref(sub->stream);
        free(sub->company_id);
        strv_free(sub->types);
        strv_free(sub->log_ids);
        free(sub);
        return NULL;
}

static LogWatch *watch_free(LogWatch *w) {
        if (!w)
                return NULL;
        free(w->run_id);
        free(w->agent_id);
        free(w->company_id);
        free(w);
        return NULL;
}

static bool wants_output(const Subscriber *sub, const LogWatch *w) {
        return sub->log_ids && (!sub->company_id || streq(sub->company_id, w->company_id)) &&
                (strv_contains((const char *const *) sub->log_ids, w->run_id) ||
                 strv_contains((const char *const *) sub->log_ids, w->agent_id));
}

static LogWatch *watch_find(EventHub *hub, const char *run_id) {
        for (LogWatch *w = hub->watches; w; w = w->next)
                if (streq(w->run_id, run_id))
                        return w;
        return NULL;
}

/* Have the supervisor hand over the output of a live run (api_events_on_output()). */
static void watch_run(EventHub *hub, const char *run_id, const char *agent_id, const char *company_id) {
        LogWatch *w;
        int r;

        if (watch_find(hub, run_id))
                return;
        r = supervisor_watch_output(hub->ctl->supervisor, run_id);
        if (r < 0) {
                /* Not live here (ended, or not launched yet): there is no output to follow. */
                log_debug_errno(r, "Events: run %s has no output to follow: %m", run_id);
                return;
        }
        w = calloc(1, sizeof(LogWatch));
        if (!w || !(w->run_id = strdup(run_id)) || !(w->agent_id = strdup(agent_id)) || !(w->company_id = strdup(company_id))) {
                log_oom();
                watch_free(w);
                return;
        }
        w->next = hub->watches;
        hub->watches = w;
}

static void unwatch_run(EventHub *hub, const char *run_id) {
        for (LogWatch **pp = &hub->watches; *pp; pp = &(*pp)->next)
                if (streq((*pp)->run_id, run_id)) {
                        LogWatch *w = *pp;
                        *pp = w->next;
                        watch_free(w);
                        return;
                }
}

/* Whether any subscriber asked for runs' output. */
static bool output_asked(const EventHub *hub) {
        for (const Subscriber *sub = hub->subscribers; sub; sub = sub->next)
                if (sub->log_ids)
                        return true;
        return false;
}

static void watches_free(EventHub *hub) {
        while (hub->watches) {
                LogWatch *w = hub->watches;
                hub->watches = w->next;
                watch_free(w);
        }
}

/* A run's status changed: one that starts is watched if a subscriber asked for its agent's
 * output, one that ends is no longer. */
static void watch_on_run_event(EventHub *hub, const StoreEvent *e) {
        _cleanup_json_ cJSON *data = NULL;
        const char *status, *agent_id;

        if (!hub->watches && !output_asked(hub))
                return; /* nobody asked for any output: nothing to parse */
        data = cJSON_Parse(e->data);
        status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "status"));
        agent_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "agentId"));
        if (!status || !agent_id)
                return;
        if (run_status_is_terminal(run_status_from_string(status))) {
                unwatch_run(hub, e->entity_id);
                return;
        }
        if (!streq(status, "running"))
                return;
        for (Subscriber *sub = hub->subscribers; sub; sub = sub->next)
                if (sub->log_ids && (!sub->company_id || streq(sub->company_id, e->company_id)) &&
                    strv_contains((const char *const *) sub->log_ids, agent_id)) {
                        watch_run(hub, e->entity_id, agent_id, e->company_id);
                        return;
                }
}

static bool wants(const Subscriber *sub, const StoreEvent *e) {
        return (!sub->company_id || streq(sub->company_id, e->company_id)) &&
                (!sub->types || strv_contains((const char *const *) sub->types, e->type));
}

/* "id: N", "event: TYPE" and the event as JSON on its data line. */
static char *format_event(const StoreEvent *e, size_t *ret_size) {
        char *text = strprintf("id: %" PRIi64 "\nevent: %s\ndata: {\"id\":%" PRIi64
                               ",\"type\":\"%s\",\"companyId\":\"%s\",\"entityId\":\"%s\",\"createdAt\":\"%s\",\"data\":%s}\n\n",
                               e->id, e->type, e->id, e->type, e->company_id, e->entity_id, e->created_at, e->data);
        if (text)
                *ret_size = strlen(text);
        return text;
}

/* The text of an event, made once for all its subscribers. */
typedef struct EventText {
        char *text;
        size_t size;
} EventText;

/* Give sub one event (its text in *t, made here if it is not yet); false when it cannot
 * take it: it is dropped, with a last word. */
static bool deliver(Subscriber *sub, const StoreEvent *e, EventText *t) {
        int r;

        sub->cursor = e->id;
        if (!wants(sub, e))
                return true;
        if (!t->text)
                t->text = format_event(e, &t->size);
        if (!t->text)
                return false;
        r = api_stream_queue(sub->stream, t->text, t->size);
        if (r == -ENOBUFS) {
                char last[200];
                snprintf(last, sizeof(last),
                         "event: dropped\ndata: {\"reason\":\"the client fell too far behind\",\"lastEventId\":%" PRIi64 "}\n\n",
                         e->id - 1);
                (void) api_stream_write(sub->stream, last, strlen(last), true);
                log_notice("Events: a client fell more than %d bytes behind, dropping it.", API_STREAM_BUFFER_MAX);
        }
        return r >= 0;
}

static void unlink_subscriber(EventHub *hub, Subscriber *sub) {
        for (Subscriber **pp = &hub->subscribers; *pp; pp = &(*pp)->next)
                if (*pp == sub) {
                        *pp = sub->next;
                        break;
                }
        api_stream_close(sub->stream);
        subscriber_free(sub);
        /* The last one that asked for output is gone: nobody needs the watches, nor would
         * see the ends that remove them. */
        if (!output_asked(hub))
                watches_free(hub);
}

/* What is new, to whoever follows. */
static void publish(EventHub *hub) {
        int64_t oldest, newest;
        int r;

        if (!hub->subscribers || store_events_span(hub->ctl->store, &oldest, &newest) < 0)
                return;
        /* The caught-up ones share one read. */
        while (hub->delivered < newest) {
                StoreEvent *events;
                size_t n;
                int64_t from = hub->delivered;

                r = store_events_after(hub->ctl->store, from, NULL, EVENTS_BATCH, &events, &n);
                if (r < 0 || n == 0)
                        break;
                for (size_t i = 0; i < n; i++)
                        if (streq(events[i].type, "run.status"))
                                watch_on_run_event(hub, &events[i]);
                EventText *texts = calloc(n, sizeof(EventText));
                for (Subscriber *sub = hub->subscribers, *next; sub && texts; sub = next) {
                        next = sub->next;
                        if (sub->cursor != from)
                                continue;
                        bool ok = true;
                        for (size_t i = 0; i < n && ok; i++)
                                ok = deliver(sub, &events[i], &texts[i]);
                        if (ok)
                                api_stream_flush(sub->stream); /* its connection woken once for them all */
                        else
                                unlink_subscriber(hub, sub);
                }
                for (size_t i = 0; texts && i < n; i++)
                        free(texts[i].text);
                free(texts);
                if (!texts) {
                        log_oom();
                        store_events_free(events, n);
                        break; /* tried again after the next turn */
                }
                hub->delivered = events[n - 1].id;
                store_events_free(events, n);
        }
        /* The ones behind read their own, a batch a turn. */
        for (Subscriber *sub = hub->subscribers, *next; sub; sub = next) {
                next = sub->next;
                if (sub->cursor < hub->delivered) {
                        StoreEvent *events;
                        size_t n;
                        bool ok = true;
                        r = store_events_after(hub->ctl->store, sub->cursor, sub->company_id, EVENTS_BATCH, &events, &n);
                        if (r < 0)
                                continue;
                        for (size_t i = 0; i < n && ok; i++) {
                                EventText t = {};
                                ok = deliver(sub, &events[i], &t);
                                free(t.text);
                        }
                        if (ok)
                                api_stream_flush(sub->stream);
                        if (n < EVENTS_BATCH && ok)
                                sub->cursor = MAX(sub->cursor, hub->delivered);
                        store_events_free(events, n);
                        if (!ok) {
                                unlink_subscriber(hub, sub);
                                continue;
                        }
                }
                if (!sub->follow && sub->cursor >= hub->delivered)
                        unlink_subscriber(hub, sub); /* caught up: its stream ends */
        }
}

static int on_publish(sd_event_source *src, uint64_t usec, void *userdata) {
        publish(userdata);
        return 0;
}

/* After a turn of the loop: if anything is new, or a client is behind or about to end, it
 * is published EVENTS_COALESCE_USEC later, with whatever comes meanwhile. A burst of changes
 * (a launch is several) is then one write to each client and one wake of its connection,
 * not one a turn: many clients cost the loop and the HTTP thread little. */
static int on_post(sd_event_source *src, void *userdata) {
        EventHub *hub = userdata;
        int64_t oldest, newest;
        int enabled = SD_EVENT_OFF;
        bool pending = false;

        if (!hub->subscribers || (sd_event_source_get_enabled(hub->coalesce, &enabled) >= 0 && enabled != SD_EVENT_OFF))
                return 0;
        if (store_events_span(hub->ctl->store, &oldest, &newest) < 0)
                return 0;
        pending = hub->delivered < newest;
        for (Subscriber *sub = hub->subscribers; sub && !pending; sub = sub->next)
                pending = sub->cursor < hub->delivered || !sub->follow;
        if (!pending)
                return 0;
        if (sd_event_source_set_time_relative(hub->coalesce, EVENTS_COALESCE_USEC) < 0 ||
            sd_event_source_set_enabled(hub->coalesce, SD_EVENT_ONESHOT) < 0)
                publish(hub); /* cannot wait: at once */
        return 0;
}

static int on_keepalive(sd_event_source *src, uint64_t usec, void *userdata) {
        EventHub *hub = userdata;

        for (Subscriber *sub = hub->subscribers, *next; sub; sub = next) {
                next = sub->next;
                if (api_stream_gone(sub->stream) || api_stream_write(sub->stream, ": keep-alive\n\n", 14, false) < 0)
                        unlink_subscriber(hub, sub);
        }
        (void) sd_event_source_set_time_relative(src, EVENTS_KEEPALIVE_USEC);
        return 0;
}

void api_events_on_output(Control *ctl, const char *run_id, int stream, const char *data, size_t size) {
        EventHub *hub = ctl->events;
        _cleanup_free_ char *text = NULL, *frame = NULL;
        _cleanup_json_ cJSON *o = NULL;
        LogWatch *w;

        if (!hub || !(w = watch_find(hub, run_id)))
                return;
        bool wanted = false;
        for (Subscriber *sub = hub->subscribers; sub && !wanted; sub = sub->next)
                wanted = wants_output(sub, w);
        if (!wanted)
                return; /* its subscribers are gone: nothing to make */
        text = utf8_lossy(data, size);
        o = cJSON_CreateObject();
        if (!text || !o || !cJSON_AddStringToObject(o, "runId", w->run_id) ||
            !cJSON_AddStringToObject(o, "agentId", w->agent_id) || !cJSON_AddStringToObject(o, "companyId", w->company_id) ||
            !cJSON_AddStringToObject(o, "stream", stream == 0 ? "stdout" : "stderr") ||
            !cJSON_AddStringToObject(o, "text", text)) {
                log_oom();
                return;
        }
        _cleanup_free_ char *json = cJSON_PrintUnformatted(o);
        frame = json ? strprintf("event: run.log\ndata: %s\n\n", json) : NULL;
        if (!frame) {
                log_oom();
                return;
        }
        for (Subscriber *sub = hub->subscribers, *next; sub; sub = next) {
                next = sub->next;
                if (!wants_output(sub, w))
                        continue;
                int r = api_stream_write(sub->stream, frame, strlen(frame), false);
                if (r == -ENOBUFS) {
                        static const char last[] =
                                "event: dropped\ndata: {\"reason\":\"the client fell too far behind a run's output\"}\n\n";
                        (void) api_stream_write(sub->stream, last, strlen(last), true);
                        log_notice("Events: a client fell more than %d bytes behind, dropping it.", API_STREAM_BUFFER_MAX);
                }
                if (r < 0) {
                        unlink_subscriber(hub, sub);
                        if (watch_find(hub, run_id) != w)
                                return; /* that was the last client that asked: w is gone */
                }
        }
}

static int hub_get(Control *ctl, EventHub **ret) {
        EventHub *hub = ctl->events;
        int r;

        if (hub) {
                *ret = hub;
                return 0;
        }
        hub = calloc(1, sizeof(EventHub));
        if (!hub)
                return -ENOMEM;
        hub->ctl = ctl;
        int64_t oldest;
        r = store_events_span(ctl->store, &oldest, &hub->delivered);
        if (r >= 0)
                r = sd_event_add_post(ctl->event, &hub->post, on_post, hub);
        if (r >= 0)
                r = sd_event_add_time_relative(ctl->event, &hub->coalesce, CLOCK_MONOTONIC, EVENTS_COALESCE_USEC, 0, on_publish,
                                               hub);
        if (r >= 0)
                r = sd_event_source_set_enabled(hub->coalesce, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(ctl->event, &hub->keepalive, CLOCK_MONOTONIC, EVENTS_KEEPALIVE_USEC, 0,
                                               on_keepalive, hub);
        if (r >= 0)
                r = sd_event_source_set_enabled(hub->keepalive, SD_EVENT_ON);
        if (r < 0) {
                sd_event_source_disable_unref(hub->post);
                sd_event_source_disable_unref(hub->coalesce);
                sd_event_source_disable_unref(hub->keepalive);
                free(hub);
                return r;
        }
        (void) sd_event_source_set_description(hub->post, "events");
        (void) sd_event_source_set_description(hub->coalesce, "events-publish");
        (void) sd_event_source_set_description(hub->keepalive, "events-keepalive");
        ctl->events = hub;
        *ret = hub;
        return 0;
}

void api_events_done(Control *ctl) {
        EventHub *hub = ctl->events;

        if (!hub)
                return;
        while (hub->subscribers)
                unlink_subscriber(hub, hub->subscribers);
        watches_free(hub); /* any made for a request whose stream then failed */
        sd_event_source_disable_unref(hub->post);
        sd_event_source_disable_unref(hub->coalesce);
        sd_event_source_disable_unref(hub->keepalive);
        free(hub);
        ctl->events = NULL;
}

/* ?logs=ID,...: runs and agents, each visible to the caller; the live runs among them,
 * and those of the agents, are watched at once. 1 when parsed, else answered. */
static int parse_logs(ApiRequest *req, EventHub *hub, char ***ret) {
        const char *logs = api_query(req, "logs");
        _cleanup_strv_free_ char **ids = NULL;
        int r;

        *ret = NULL;
        if (!logs)
                return 1;
        if (strv_push_split(&ids, logs) < 0)
                return -ENOMEM;
        if (strv_length(ids) > EVENTS_LOG_IDS_MAX)
                return api_reply_error(req, 400, "logs names more than %d runs and agents", EVENTS_LOG_IDS_MAX);
        if (!ids)
                return api_reply_error(req, 400, "logs must name runs or agents by id");
        STRV_FOREACH(id, ids) {
                _cleanup_(run_donep) Run run = {};
                _cleanup_(agent_donep) Agent agent = {};

                r = store_get(api_store(req), &run_entity, *id, &run);
                if (r >= 0) {
                        if (!api_check_company(req, run.company_id))
                                return 0;
                        watch_run(hub, run.id, run.agent_id, run.company_id);
                        continue;
                }
                if (r != -ENOENT)
                        return r;
                r = store_get(api_store(req), &agent_entity, *id, &agent);
                if (r == -ENOENT)
                        return api_reply_error(req, 404, "logs: no run or agent %.64s", *id);
                if (r < 0)
                        return r;
                if (!api_check_company(req, agent.company_id))
                        return 0;
                Run *items;
                size_t n;
                r = store_runs_active_of_agent(api_store(req), agent.id, &items, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        if (items[i].status == RUN_RUNNING)
                                watch_run(hub, items[i].id, items[i].agent_id, items[i].company_id);
                entity_array_free(&run_entity, items, n);
        }
        *ret = TAKE_PTR(ids);
        return 1;
}

/* ?after=N or Last-Event-ID: N; -1 when neither says. */
static int parse_after(ApiRequest *req, int64_t *ret) {
        const char *after = api_query(req, "after") ?: api_header(req, "Last-Event-ID");
        int64_t v;

        *ret = -1;
        if (!after)
                return 1;
        if (safe_atoi64(after, &v) < 0 || v < 0) {
                (void) api_reply_error(req, 400, "after (or Last-Event-ID) must be an event id, not '%.32s'", after);
                return 0;
        }
        *ret = v;
        return 1;
}

static int handle_events(ApiRequest *req) {
        const char *company_id = api_query(req, "companyId"), *types = api_query(req, "types"),
                   *follow = api_query(req, "follow");
        _cleanup_strv_free_ char **type_list = NULL, **log_ids = NULL;
        Subscriber *sub;
        EventHub *hub;
        ApiStream *stream;
        int64_t after, oldest, newest;
        int r;

        r = parse_after(req, &after);
        if (r <= 0)
                return r;
        if (follow && !streq(follow, "true") && !streq(follow, "false"))
                return api_reply_error(req, 400, "follow must be true or false");
        /* An agent sees its own company only. */
        if (req->caller_agent_id) {
                if (company_id && !streq(company_id, req->caller_company_id))
                        return api_reply_error(req, 403, "agents may act only within their own company");
                company_id = req->caller_company_id;
        }
        if (strv_push_split(&type_list, types) < 0)
                return -ENOMEM;
        r = hub_get(req->ctl, &hub);
        if (r < 0)
                return r;
        r = parse_logs(req, hub, &log_ids);
        if (r <= 0)
                return r;
        r = store_events_span(api_store(req), &oldest, &newest);
        if (r < 0)
                return r;
        sub = calloc(1, sizeof(Subscriber));
        if (!sub || (company_id && !(sub->company_id = strdup(company_id)))) {
                subscriber_free(sub);
                return -ENOMEM;
        }
        sub->types = TAKE_PTR(type_list);
        sub->log_ids = TAKE_PTR(log_ids);
        sub->follow = !streq_ptr(follow, "false");
        /* Without a starting point, from now on; with one, from there (what is kept of it). */
        sub->cursor = after < 0 ? newest : MIN(after, newest);
        r = api_reply_stream(req, "text/event-stream", &stream);
        if (r < 0) {
                subscriber_free(sub);
                return r;
        }
        sub->stream = stream;
        char hello[200];
        int n = snprintf(hello, sizeof(hello), "retry: 2000\n\n");
        if (after >= 0 && oldest > 0 && after + 1 < oldest)
                /* What it missed is partly forgotten already. */
                n += snprintf(hello + n, sizeof(hello) - (size_t) n,
                              "event: gap\ndata: {\"after\":%" PRIi64 ",\"oldestId\":%" PRIi64 "}\n\n", after, oldest);
        (void) api_stream_write(stream, hello, (size_t) n, true);
        sub->next = hub->subscribers;
        hub->subscribers = sub;
        if (sub->cursor < hub->delivered || !sub->follow)
                (void) sd_event_source_set_enabled(hub->post, SD_EVENT_ON);
        return 0;
}

const ApiRoute api_event_routes[] = {
        { "GET", "/api/events", handle_events },
        {},
};
