/* fuzz_cli.c — libFuzzer target for the command-line parsers of generate, localize and layers: the input is
 * split at NUL bytes into arguments (the first byte picks the command).  --model always names a missing
 * folder (appended last, and the last --model wins), so a parse that succeeds stops at opening the model:
 * nothing is run or written.  Every parse ends in 0 or a clean error (exit code 2), never a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../experiments/generate.h"
#include "../../experiments/layers.h"
#include "../../experiments/localize.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    char *buf = fz_str(data + 1, size - 1);
    char *argv[260];
    int argc = 0;
    static const char *const cmds[] = {"generate", "localize", "layers"};
    int which = data[0] % 3;
    argv[argc++] = (char *)cmds[which];
    for (size_t i = 0, s = 0; i <= size - 1 && argc < 256; i++)
        if (i == size - 1 || buf[i] == 0) {
            argv[argc++] = buf + s;
            s = i + 1;
        }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { free(buf); return 0; } /* prints and exits */
    argv[argc++] = (char *)"--model";
    argv[argc++] = (char *)"/nonexistent/locus-fuzz-model";
    argv[argc] = NULL;
    int rc = which == 0 ? locus_cmd_generate(argc, argv) : which == 1 ? locus_cmd_localize(argc, argv) : locus_cmd_layers(argc, argv);
    if (rc != 0 && rc != 2) __builtin_trap();
    free(buf);
    return 0;
}
