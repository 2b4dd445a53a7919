/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Timer heartbeats (reference §7): an agent whose runtimeConfig.heartbeat has
 * "enabled": true and "intervalSec" > 0 is woken (source timer, reason
 * heartbeat_timer) once intervalSec has passed since its last heartbeat. One
 * sd-event timer fires at the earliest moment an agent is due.
 */
#pragma once

typedef struct Control Control;
typedef struct Scheduler Scheduler;

int scheduler_new(Control *ctl, Scheduler **ret);
Scheduler *scheduler_free(Scheduler *s);

/* Look at the agents again now (an agent or its configuration changed). */
void scheduler_reschedule(Scheduler *s);
