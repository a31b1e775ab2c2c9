#!/usr/bin/env bash
# Fetches the perplexity evaluation text into .cache/eval/jargon-ch1-12.txt: chapters 1-12 of
# the Jargon File 4.4.7 (public domain; lines 275-2114 of jargon.txt, 120,621 bytes of English
# prose about hacker slang and writing style), and a disjoint calibration text for importance
# matrices into .cache/eval/jargon-appendix.txt (appendices A-C, lines 40101-41630), from
# Debian's `jargon-text` package (4.4.7-4.1) fetched with `apt-get download` (no install).
# Checks the sha256 of the package and of both texts. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/eval/jargon-ch1-12.txt
want=422667925468c723b6c309524db74c555659afd531885683395e1be8a506472a
deb_sha=17d05997e30eb3d5d6713929b8e2f81b63a5f50073858ad2a06701c71f54dcdb
calib=.cache/eval/jargon-appendix.txt
calib_want=6b5a918d7b352585e102b8f8a6037bee15ddf82864fa717edca7569e224b306b
if [ -f "$dest" ] && [ -f "$calib" ] && echo "$want  $dest" | sha256sum -c --status \
   && echo "$calib_want  $calib" | sha256sum -c --status; then exit 0; fi
mkdir -p .cache/eval/deb
deb=.cache/eval/deb/jargon-text_4.4.7-4.1_all.deb
if [ ! -f "$deb" ]; then
  echo "fetching jargon-text 4.4.7-4.1 from Debian (654 kB)..." >&2
  (cd .cache/eval/deb && apt-get download jargon-text=4.4.7-4.1 >/dev/null) || {
    echo "apt-get download failed: run 'apt-get update' first" >&2; exit 1; }
fi
echo "$deb_sha  $deb" | sha256sum -c --quiet
rm -rf .cache/eval/deb/x && dpkg-deb -x "$deb" .cache/eval/deb/x
zcat .cache/eval/deb/x/usr/share/doc/jargon-text/jargon.txt.gz | sed -n 275,2114p > "$dest.part"
mv "$dest.part" "$dest"
zcat .cache/eval/deb/x/usr/share/doc/jargon-text/jargon.txt.gz | sed -n 40101,41630p > "$calib.part"
mv "$calib.part" "$calib"
echo "$want  $dest" | sha256sum -c --quiet
echo "$calib_want  $calib" | sha256sum -c --quiet
