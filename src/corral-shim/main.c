/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* corral-shim: see src/lib/shim.h. */
#include "shim.h"

int main(int argc, char *argv[]) {
        return shim_main(argc, argv);
}
