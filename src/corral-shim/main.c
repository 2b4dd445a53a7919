/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* corral-shim: see src/lib/shim.h; corral-shim --spawner: see src/lib/shim-spawner.h;
 * corral-shim --workspace-remove: see src/lib/shim-workspace.h. */
#include <string.h>

#include "shim/shim-spawner.h"
#include "shim/shim-workspace.h"
#include "shim/shim.h"

int main(int argc, char *argv[]) {
        if (argc == 2 && strcmp(argv[1], SHIM_SPAWNER_ARG) == 0)
                return shim_spawner_main();
        if (argc >= 2 && strcmp(argv[1], SHIM_WORKSPACE_REMOVE_ARG) == 0)
                return shim_workspace_remove_main(argc, argv);
        return shim_main(argc, argv);
}
