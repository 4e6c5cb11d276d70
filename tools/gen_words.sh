#!/usr/bin/env bash
# gen_words.sh — makes zoo/words/words-N.txt, the sign vocabulary of `locus dataset signs`, from Debian's
# SCOWL-derived word list (package wamerican-small, file /usr/share/dict/american-english-small; its
# license is copied verbatim to zoo/words/COPYING).  Reproducible: the same input file gives the same list.
#
# Selection: lines that are 3-8 (MIN_LEN-MAX_LEN) lower-case ASCII letters (drops proper nouns, abbreviations, possessives and
# accented words), minus the words whose sha256 is listed in zoo/words/exclude.sha256 (offensive or
# unsuitable for a sign, kept as hashes so the repository does not spell them), then the N words with the
# smallest sha256("locus-words-v1:" + word) — a fixed pseudo-random sample — written in alphabetical order
# (LC_ALL=C), one per line.  Needs perl with Digest::SHA (Debian: perl).
# Usage: [MIN_LEN=3] [MAX_LEN=8] tools/gen_words.sh [N (default 1000)] [SOURCE (default /usr/share/dict/american-english-small)]
# writes zoo/words/words-N.txt, or zoo/words/words-N-lenMIN-MAX.txt for other lengths (the same ranking).
set -euo pipefail
n=${1:-1000}
src=${2:-/usr/share/dict/american-english-small}
lo=${MIN_LEN:-3} hi=${MAX_LEN:-8}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/zoo/words/words-$n.txt
[ "$lo-$hi" = 3-8 ] || out=$here/zoo/words/words-$n-len$lo-$hi.txt
excl=$here/zoo/words/exclude.sha256
[ -r "$src" ] || { echo "gen_words: $src not found (apt-get install wamerican-small)" >&2; exit 1; }
export LC_ALL=C
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
grep -E "^[a-z]{$lo,$hi}\$" "$src" | sort -u >"$tmp/cand"
touch "$tmp/excl"; if [ -r "$excl" ]; then grep -oE '^[0-9a-f]{64}' "$excl" | sort -u >"$tmp/excl" || true; fi
perl -MDigest::SHA=sha256_hex -e '
    my ($excl, $cand) = @ARGV; my %x;
    open(my $e, "<", $excl) or die; while (<$e>) { chomp; $x{$_} = 1 } close $e;
    open(my $c, "<", $cand) or die;
    while (my $w = <$c>) { chomp $w; next if $x{sha256_hex($w)}; print sha256_hex("locus-words-v1:$w"), " $w\n" }
' "$tmp/excl" "$tmp/cand" | sort >"$tmp/ranked"
head -n "$n" "$tmp/ranked" | awk '{ print $2 }' | sort >"$tmp/out"
[ "$(wc -l <"$tmp/out")" = "$n" ] || { echo "gen_words: only $(wc -l <"$tmp/out") words available" >&2; exit 1; }
mv "$tmp/out" "$out"
echo "gen_words: $out ($n words from $(wc -l <"$tmp/cand") candidates in $src, $(wc -l <"$tmp/excl") excluded hashes)" >&2
