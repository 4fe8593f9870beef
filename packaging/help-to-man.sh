#!/usr/bin/env bash
# Writes a man page for a clap binary from its --help texts: the top-level help, then each
# subcommand's, verbatim. Used for `mftplus` and `mftplus-agent`, whose clap grammar lives in
# their binaries (mftctl writes real pages from its grammar: `mftctl man --out DIR`).
# Usage: packaging/help-to-man.sh BINARY NAME SECTION OUT_FILE
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 BINARY NAME SECTION OUT_FILE" >&2; exit 2; }
bin=$1 name=$2 section=$3 out=$4

# roff-safe text: ASCII only (… becomes ...), backslashes escaped, lines starting with . or '
# protected.
escape() {
  iconv -f UTF-8 -t ASCII//TRANSLIT | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

# Subcommand names: the indented first words of a help text's "Commands:" block, but `help`.
subcommands() {
  awk '/^Commands:/{on=1; next} on && /^[^ ]/{on=0} on && /^  [a-z]/{print $1}' | grep -vx help || true
}
upper() { tr '[:lower:]' '[:upper:]'; }

# One section per subcommand at any depth: its --help, verbatim.
sections() { # WORDS...
  local sub
  for sub in $("$bin" "$@" --help | subcommands); do
    printf '.SH "%s"\n.nf\n' "$(echo "$name $* $sub" | tr -s ' ' | upper)"
    "$bin" "$@" "$sub" --help | escape
    printf '.fi\n'
    sections "$@" "$sub"
  done
}

help=$("$bin" --help)
version=$("$bin" --version | awk '{print $2}')
{
  printf '.TH %s %s "" "%s %s" "MFTPlus"\n' "$(echo "$name" | upper)" "$section" "$name" "$version"
  printf '.SH NAME\n%s \\- %s\n' "$name" "$(printf '%s\n' "$help" | sed -n '1p' | escape)"
  printf '.SH SYNOPSIS\n.nf\n'
  printf '%s\n' "$help" | sed -n 's/^Usage: //p' | escape
  printf '.fi\n.SH DESCRIPTION\n.nf\n'
  printf '%s\n' "$help" | sed -e '1d' -e '/^Usage: /d' | cat -s | escape
  printf '.fi\n'
  sections
  printf '.SH SEE ALSO\nmftctl(1); /usr/share/doc/mftplus\n'
} >"$out"
