#!/usr/bin/env bash
# Prints the Debian archive this machine's apt already uses, so scripts/test-wine.sh bootstraps its chroot from the
# site's own mirror (or proxy) rather than from a host name written into the repository.
#
#   bash scripts/apt-mirror.sh [APT_DIR]     (APT_DIR defaults to /etc/apt)
#
# Reads sources.list and sources.list.d/*.list (one-line "deb [options] URI suite components") and
# sources.list.d/*.sources (deb822 stanzas with Types, URIs, Suites, Enabled). The first enabled "deb" entry whose URI
# ends in /debian wins: security, updates and backports archives share that path only with suites debootstrap does
# not bootstrap, so they are skipped. Prints nothing and exits 1 when no entry fits.
set -u  # no pipefail: the final awk decides, and may stop reading early

APT_DIR=${1:-/etc/apt}

one_line() {
  # Drops "[options]" (which may hold spaces), then prints "URI suite" for every deb line.
  sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$@" 2>/dev/null | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
}

deb822() {
  awk '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false)$/) {
        n = split(uris, u, " ")
        m = split(suites, s, " ")
        for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
      }
      types = ""; uris = ""; suites = ""; enabled = ""
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    tolower($1) == "types:" { $1 = ""; types = $0 }
    tolower($1) == "uris:" { $1 = ""; uris = $0 }
    tolower($1) == "suites:" { $1 = ""; suites = $0 }
    tolower($1) == "enabled:" { enabled = tolower($2) }
    END { flush() }
  ' "$@" 2>/dev/null
}

{
  [ -f "$APT_DIR/sources.list" ] && one_line "$APT_DIR/sources.list"
  for f in "$APT_DIR"/sources.list.d/*.list; do [ -f "$f" ] && one_line "$f"; done
  for f in "$APT_DIR"/sources.list.d/*.sources; do [ -f "$f" ] && deb822 "$f"; done
} | awk '$2 !~ /-(security|updates|backports)$/ && $1 ~ /\/debian\/?$/ { sub(/\/$/, "", $1); print $1; found = 1; exit }
         END { exit found ? 0 : 1 }'
