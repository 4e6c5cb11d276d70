#!/usr/bin/env bash
# teaching_words.sh — makes zoo/signs-sd/words.txt, the teaching model's vocabulary: the N (40) words of
# zoo/words/words-1000.txt with 4-6 letters that are ONE token of the CLIP BPE vocabulary (tokenizer/vocab.json
# holds "word</w>"), taken in the fixed pseudo-random order of tools/gen_words.sh (smallest
# sha256("locus-words-v1:" + word) first), written in alphabetical order (LC_ALL=C).
# Why one token: CLIP's tokenizer lower-cases, so such a word reaches the UNet as one embedding row whatever
# its letters; every word then costs the model the same (one row to learn) and the vocabulary is the set of
# rows the demo patches.  Reproducible: the same input files give the same list.  Needs perl with Digest::SHA.
#   tools/teaching_words.sh [N (40)] [VOCAB_JSON (tests/golden/pipelines/sd15-tiny/tokenizer/vocab.json)]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-40}
vocab=${2:-tests/golden/pipelines/sd15-tiny/tokenizer/vocab.json}
export LC_ALL=C
grep -E '^[a-z]{4,6}$' zoo/words/words-1000.txt | perl -MDigest::SHA=sha256_hex -e '
    my $vocab = do { local $/; open(my $v, "<", $ARGV[0]) or die "$ARGV[0]: $!"; <$v> };
    my %tok; $tok{$1} = 1 while $vocab =~ /"([a-z]+)<\/w>"/g;
    while (my $w = <STDIN>) { chomp $w; print sha256_hex("locus-words-v1:$w"), " $w\n" if $tok{$w} }' "$vocab" |
  sort | head -n "$n" | awk '{print $2}' | sort >zoo/signs-sd/words.txt
echo "teaching_words: wrote zoo/signs-sd/words.txt ($(wc -l <zoo/signs-sd/words.txt) words)"
