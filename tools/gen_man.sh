#!/usr/bin/env bash
# gen_man.sh — the man pages of locus, generated from the same text as --help (no other source of truth):
#   tools/gen_man.sh LOCUS_BINARY OUTDIR
# writes OUTDIR/locus.1 (from `locus help`) and OUTDIR/locus-CMD.1 for every command `locus help --commands`
# names (from `locus CMD --help`, whose form experiments/cli_opts.h describes).  Needs only bash, sed and awk.
set -eu
LOCUS=$1 OUT=$2
mkdir -p "$OUT"
ver=$("$LOCUS" version | sed 's/^locus //')

# the --help text of one command on stdin -> a troff man page on stdout
to_troff() { # NAME (locus-generate)
  awk -v name="$1" -v ver="$ver" '
    function esc(s) { gsub(/\\/, "\\e", s); return s }
    function line(s) { s = esc(s); if (s ~ /^[.\047]/) s = "\\&" s; print s }
    function flag(s) { s = esc(s); gsub(/-/, "\\-", s); return s }
    BEGIN { ns = nt = no = 0 }
    NR == 1 { sub(/^usage: /, ""); syn[ns++] = $0; state = "syn"; next }
    state == "syn" && /^       / { sub(/^ +/, ""); syn[ns++] = $0; next }
    state == "syn" && /^$/ { state = "about"; next }
    state == "about" { about = $0; state = "text"; next }
    /^commands: / { subs = substr($0, 11); next }
    /^options:$/ { state = "opts"; next }
    state == "text" && !/^$/ { text[nt++] = $0; next }
    state == "opts" && /^  [^ ]/ {
      s = substr($0, 3); i = index(s, "  ")
      f = substr(s, 1, i - 1); h = substr(s, i); sub(/^ +/, "", h)
      of[no] = f; oh[no++] = h; next }
    END {
      up = toupper(name)
      printf ".TH %s 1 \"\" \"locus %s\" \"locus manual\"\n", up, ver
      print ".SH NAME"; print esc(name) " \\- " esc(about)
      print ".SH SYNOPSIS"; print ".nf"; for (i = 0; i < ns; i++) line(syn[i]); print ".fi"
      print ".SH DESCRIPTION"; line(about)
      if (nt) { # prose is filled; runs of indented lines (tables, lists) are kept as they are
        print ".PP"; nf = 0
        for (i = 0; i < nt; i++) {
          if (text[i] ~ /^ / && !nf) { print ".nf"; nf = 1 } else if (text[i] !~ /^ / && nf) { print ".fi"; nf = 0 }
          line(text[i])
        }
        if (nf) print ".fi"
      }
      if (subs != "") { print ".SH COMMANDS"; line(subs) }
      if (no) {
        print ".SH OPTIONS"
        for (i = 0; i < no; i++) {
          print ".TP"; h = oh[i]; j = index(h, "  ")
          if (j > 1 && substr(h, 1, j - 1) !~ / /) { printf "\\fB%s\\fR \\fI%s\\fR\n", flag(of[i]), esc(substr(h, 1, j - 1)); h = substr(h, j + 2) }
          else printf "\\fB%s\\fR\n", flag(of[i])
          line(h)
        }
      }
      print ".SH SEE ALSO"; print "\\fBlocus\\fR(1)"
    }'
}

cmds=$("$LOCUS" help --commands)
for c in $cmds; do
  "$LOCUS" "$c" --help | to_troff "locus-$c" >"$OUT/locus-$c.1.tmp"
  mv "$OUT/locus-$c.1.tmp" "$OUT/locus-$c.1"
done

# locus.1: the command list of `locus help`, each pointing to its page
"$LOCUS" help | awk -v ver="$ver" '
  function esc(s) { gsub(/\\/, "\\e", s); return s }
  function line(s) { s = esc(s); if (s ~ /^[.\047]/) s = "\\&" s; print s }
  BEGIN { ns = nt = nc = nl = 0 }
  NR == 1 { sub(/^usage: /, ""); syn[ns++] = $0; state = "syn"; next }
  state == "syn" && /^       / { sub(/^ +/, ""); syn[ns++] = $0; next }
  state == "syn" && /^$/ { state = "text"; next }
  /^commands:$/ { state = "cmds"; next }
  state == "cmds" && /^  [^ ]/ { s = substr($0, 3); i = index(s, "  "); cn[nc] = substr(s, 1, i - 1); h = substr(s, i); sub(/^ +/, "", h); ch[nc++] = h; next }
  state == "cmds" && /^$/ { state = "tail"; next }
  state == "text" && !/^$/ { text[nt++] = $0; next }
  state == "tail" && !/^$/ { tail[nl++] = $0; next }
  END {
    printf ".TH LOCUS 1 \"\" \"locus %s\" \"locus manual\"\n", ver
    name = text[0]; for (i = 1; i < nt; i++) name = name " " text[i]
    print ".SH NAME"; print "locus \\- " esc(name)
    print ".SH SYNOPSIS"; print ".nf"; for (i = 0; i < ns; i++) print esc(syn[i]); print ".fi"
    print ".SH DESCRIPTION"; for (i = 0; i < nt; i++) line(text[i])
    print ".SH COMMANDS"
    for (i = 0; i < nc; i++) { print ".TP"; printf "\\fB%s\\fR\n%s (\\fBlocus\\-%s\\fR(1))\n", cn[i], esc(ch[i]), cn[i] }
    print ".SH ENVIRONMENT AND HELP"; for (i = 0; i < nl; i++) line(tail[i])
    printf ".SH SEE ALSO\n"
    for (i = 0; i < nc; i++) printf "\\fBlocus\\-%s\\fR(1)%s\n", cn[i], i + 1 < nc ? "," : ""
  }' >"$OUT/locus.1.tmp"
mv "$OUT/locus.1.tmp" "$OUT/locus.1"
