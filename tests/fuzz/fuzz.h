/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every fuzz target defines: libFuzzer's entry point (standalone.c's, without it). */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
