#!/usr/bin/env zsh
# SPDX-License-Identifier: MIT
# Prints, one per line, what zsh's completion system offers for a command
# line: zsh_complete.zsh FPATH_DIR 'godislock run --'. Runs an interactive
# `zsh -f` in a pseudo-terminal (zsh/zpty), loads compinit with FPATH_DIR
# first in $fpath, types the line and a TAB, and records every candidate
# handed to compadd (the technique of Valodim's zsh-capture-completion).
# An empty FPATH_DIR adds nothing to $fpath; a third argument is zsh code
# run after compinit (e.g. 'source <(godislock completion zsh)').
# Exits 1 if zsh gives no answer within about 10 s.
emulate -L zsh
zmodload zsh/zpty || exit 1
local dir=$1 line=$2 after=${3-}
local init=${TMPDIR:-/tmp}/zsh_complete.$$.zsh
cat >"$init" <<END
PROMPT= RPROMPT= PS2=
${dir:+fpath=(${(q)dir} \$fpath)}
autoload -U compinit && compinit -u -d ${(q)init}.dump
$after
compadd() {
  # Queries from the completion system itself pass through untouched.
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then
    builtin compadd "\$@"
    return
  fi
  local -a hits
  builtin compadd -A hits "\$@"
  (( \$#hits )) && print -rl -- "<<" \$hits ">>"
  builtin compadd "\$@"
}
bindkey '^I' complete-word
begin-marker() { print -r -- "@@BEGIN@@" }
end-marker() { print -r -- "@@END@@" }
compprefuncs=(begin-marker)
comppostfuncs=(end-marker exit)
print -r -- "@@READY@@"
END
zpty -b z zsh -f -i
zpty -w z "source ${(q)init}"
local out= chunk= ready=0 i
for i in {1..100}; do
  zpty -r -t z chunk && out+=$chunk
  if [[ $out == *@@READY@@* ]]; then ready=1; break; fi
  sleep 0.1
done
(( ready )) || { zpty -d z; rm -f "$init" "$init.dump"; exit 1 }
out=
zpty -w -n z "$line"$'\t'
local done=0
for i in {1..100}; do
  while zpty -r -t z chunk; do out+=$chunk; done
  if [[ $out == *@@END@@* ]]; then done=1; break; fi
  sleep 0.1
done
zpty -d z 2>/dev/null
rm -f "$init" "$init.dump"
(( done )) || exit 1
out=${out//$'\r'/}
out=${out#*@@BEGIN@@}
out=${out%%@@END@@*}
# Keep only the candidate lines between "<<" and ">>".
local on=0 l
for l in ${(f)out}; do
  if [[ $l == '<<' ]]; then on=1; continue; fi
  if [[ $l == '>>' ]]; then on=0; continue; fi
  (( on )) && print -r -- "$l"
done
exit 0
