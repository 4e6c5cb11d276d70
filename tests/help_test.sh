#!/usr/bin/env bash
# help_test.sh — every subcommand's --help, the man pages and the bash completion made from it.
#   bash tests/help_test.sh BUILD_DIR TMPDIR      (prints what fails, then "P F" last; called by run_tests.sh)
# 1. For every command of `locus help --commands`: `locus CMD --help` exits 0, prints on stdout only, and equals
#    `locus help CMD`; its option lines each name a default or say "required".
# 2. The options each command's parser accepts are read from its source — every "--flag" / "-o" string literal
#    in the files below (strcmp'd by hand-written parsers, or in cli_opts tables) — and each must be listed in
#    its --help; and every option --help lists must be such a literal (no help for options that do not exist).
# 3. tools/gen_man.sh makes one page per command plus locus.1; groff formats each without a warning.
# 4. tools/gen_completion.sh's script, sourced in bash, completes `locus gen<TAB>`, `locus generate --gu<TAB>`,
#    `locus train <TAB>`, `locus localize --mse <TAB>` and `locus lora merge -<TAB>`.
set -u
B=$1 T=$2
L=$B/locus
p=0 f=0
ok() { p=$((p+1)); }
bad() { f=$((f+1)); echo "  FAIL help: $*"; }

# command -> source files of its parser, and literals there that belong to other commands
src_of() {
  case $1 in
    generate) echo experiments/generate.c experiments/generate_opts.c ;;
    layers) echo experiments/layers.c ;;
    localize | edit | detox) echo experiments/localize.c ;;
    merge) echo experiments/localize_results.c ;;
    clip-score) echo experiments/clip_score.c ;;
    grad) echo experiments/grad.c ;;
    train-lora) echo experiments/train_lora.c ;;
    lora) echo experiments/lora_cmd.c ;;
    train) echo experiments/train_common.c experiments/train_pipeline.c ;;
    dataset) echo experiments/dataset_cli.c ;;
    ocr) echo experiments/ocr_cmd.c ;;
    compare) echo experiments/compare_cmd.c ;;
    info | tensors | version | help) echo experiments/locus_cli.c ;;
    *) echo "" ;;
  esac
}
not_of() { # options of a shared source file that this command does not take
  case $1 in
    localize) echo "--benign --p2p-tau" ;;
    edit) echo "--benign" ;;
    detox) echo "--p2p-tau" ;;
    info) echo "--version --commands" ;;
    help) echo "--version --model" ;;
    tensors | version) echo "--version --commands --model" ;;
  esac
}

cmds=$("$L" help --commands)
[ "$(echo "$cmds" | wc -l)" -ge 15 ] && ok || bad "locus help --commands lists only: $cmds"
for c in $cmds; do
  "$L" "$c" --help >"$T/h.$c" 2>"$T/h.$c.err"; rc=$?
  "$L" help "$c" >"$T/hh.$c" 2>/dev/null
  if [ $rc = 0 ] && [ -s "$T/h.$c" ] && [ ! -s "$T/h.$c.err" ] && cmp -s "$T/h.$c" "$T/hh.$c" && head -1 "$T/h.$c" | grep -q "^usage: locus $c"; then ok
  else bad "$c --help: exit $rc, stderr '$(head -1 "$T/h.$c.err")', same as 'locus help $c': $(cmp -s "$T/h.$c" "$T/hh.$c" && echo yes || echo no)"; fi
  # the help's option lines
  sed -n '/^options:$/,$p' "$T/h.$c" | grep '^  [^ ]' | sed -E 's/^  ([^ ]+) .*/\1/' | sort -u >"$T/listed.$c"
  nodef=$(sed -n '/^options:$/,$p' "$T/h.$c" | grep '^  [^ ]' | grep -v -i 'default\|required' | head -3)
  [ -z "$nodef" ] && ok || bad "$c --help: option lines without a default: $nodef"
  srcs=$(src_of "$c")
  [ -n "$srcs" ] || { bad "$c: no source files known to tests/help_test.sh (add the command to src_of)"; continue; }
  grep -ho '"\(-o\|--[a-z0-9][a-z0-9-]*\)"' $srcs | tr -d '"' | grep -vx -- '--help\|-h' | sort -u >"$T/src.$c"
  for x in $(not_of "$c"); do grep -vx -- "$x" "$T/src.$c" >"$T/src2" || true; mv "$T/src2" "$T/src.$c"; done
  missing=$(comm -23 "$T/src.$c" "$T/listed.$c" | tr '\n' ' ')
  [ -z "$missing" ] && ok || bad "$c accepts options its --help does not list: $missing"
  extra=$(comm -13 "$T/src.$c" "$T/listed.$c" | grep -vx -- '--' | tr '\n' ' ')
  [ -z "$extra" ] && ok || bad "$c --help lists options its parser does not have: $extra"
done
# sub-commands: their help too
for c in "lora merge" "lora list" "train vae" "dataset signs"; do
  if "$L" $c --help >"$T/sub" 2>/dev/null && "$L" help $c | cmp -s - "$T/sub" && head -1 "$T/sub" | grep -q "^usage: locus ${c%% *}"; then ok
  else bad "locus $c --help / locus help $c"; fi
done
"$L" help nosuchcommand >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "unknown command" "$T/err" && ok || bad "locus help nosuchcommand: exit $rc"

# man pages
rm -rf "$T/man"
if bash tools/gen_man.sh "$L" "$T/man" 2>"$T/man.err"; then ok; else bad "gen_man.sh: $(head -2 "$T/man.err")"; fi
for c in $cmds; do
  m=$T/man/locus-$c.1
  if [ -s "$m" ] && grep -q "^\.SH OPTIONS\|^\.SH DESCRIPTION" "$m"; then ok; else bad "no man page for $c"; continue; fi
  # every option of the help is in the page (troff spells - as \-)
  for o in $(cat "$T/listed.$c"); do
    grep -qF "\\fB$(echo "$o" | sed 's/-/\\-/g')\\fR" "$m" || { bad "locus-$c.1 lacks $o"; break; }
  done
done
[ -s "$T/man/locus.1" ] && [ "$(grep -c '^\.TP' "$T/man/locus.1")" = "$(echo "$cmds" | wc -l)" ] && ok || bad "locus.1 does not list every command"
if command -v groff >/dev/null; then
  w=$(for m in "$T"/man/*.1; do groff -man -Tutf8 -ww -z "$m" 2>&1; done | head -3)
  [ -z "$w" ] && ok || bad "groff warnings: $w"
fi

# bash completion
if bash tools/gen_completion.sh "$L" >"$T/compl" 2>"$T/compl.err" && bash -n "$T/compl"; then ok; else bad "gen_completion.sh: $(head -2 "$T/compl.err")"; fi
complete_words() { # words of the command line; the last is the word being completed
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _locus; printf "%s\n" "${COMPREPLY[@]}"' _ "$T/compl" "$@" 2>&1
}
[ "$(complete_words locus gen)" = generate ] && ok || bad "locus gen<TAB> -> '$(complete_words locus gen)'"
[ "$(complete_words locus generate --gu)" = --guidance ] && ok || bad "locus generate --gu<TAB> -> '$(complete_words locus generate --gu)'"
[ "$(complete_words locus train '' | tr '\n' ' ')" = "vae unet transformer pipeline " ] && ok || bad "locus train <TAB> -> '$(complete_words locus train '')'"
[ "$(complete_words locus localize --mse '' | tr '\n' ' ')" = "true uint8-wrap " ] && ok || bad "locus localize --mse <TAB> -> '$(complete_words locus localize --mse '')'"
[ "$(complete_words locus lora merge - | sort | tr '\n' ' ')" = "--lora --model -o " ] && ok || bad "locus lora merge -<TAB> -> '$(complete_words locus lora merge -)'"
[ "$(complete_words locus help lo | tr '\n' ' ')" = "localize lora " ] && ok || bad "locus help lo<TAB> -> '$(complete_words locus help lo)'"
# every option of every command completes
for c in $cmds; do
  got=$(complete_words locus "$c" - | sort -u)
  [ "$got" = "$(sort -u "$T/listed.$c")" ] && ok || bad "locus $c -<TAB> differs from its --help options"
done
echo "$p $f"
