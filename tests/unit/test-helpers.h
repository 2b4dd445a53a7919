/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every cmocka test program includes: cmocka itself, with output in TAP
 * for the automake driver.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define RUN_TESTS(tests)                                          \
        int main(void) {                                          \
                cmocka_set_message_output(CM_OUTPUT_TAP);         \
                return cmocka_run_group_tests(tests, NULL, NULL); \
        }
