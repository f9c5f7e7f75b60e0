package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionCommand is `whenlua completion bash|zsh|fish`: it prints a
// script that completes whenlua's commands, flags, variable names, job
// names and run serials by asking the binary itself (completeFlag).
func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Load it in the current shell, or install it:\n\n" +
			"    bash:  source <(whenlua completion bash)      (e.g. in ~/.bashrc)\n" +
			"    zsh:   source <(whenlua completion zsh)       (after compinit), or save it as _whenlua in $fpath\n" +
			"    fish:  whenlua completion fish > ~/.config/fish/completions/whenlua.fish\n\n" +
			"Variable names (get, set, whisper, test, unset, history), job names\n" +
			"(start, log) and run serials (cancel, tail, output) are asked from the\n" +
			"running daemon; without one they are simply not offered.",
		Action: func(c *cli.Context) error {
			if err := exactArgs(c, 1, "bash|zsh|fish"); err != nil {
				return err
			}
			script, ok := completionScripts[c.Args().First()]
			if !ok {
				return usageErrorf("no completion for shell %q (want bash, zsh or fish)", c.Args().First())
			}
			_, err := fmt.Fprint(e.stdout, script)
			return err
		},
	}
}

// completionScripts are the scripts by shell. Each passes the words before
// the cursor (and the word at it when it starts with "-") to the binary
// with --generate-bash-completion, and offers what it prints; a NAME= word
// is completed without a following space. When nothing is printed, the
// shell completes file names.
var completionScripts = map[string]string{
	"bash": `# bash completion for whenlua.
# Load it with:  source <(whenlua completion bash)
_whenlua_complete() {
  local line="${COMP_LINE:0:COMP_POINT}" cur="" cmd out w
  local -a words
  read -r -a words <<<"$line"
  if [[ -n "$line" && "$line" != *[[:space:]] ]]; then
    cur="${words[${#words[@]}-1]}"
    words=("${words[@]:0:${#words[@]}-1}")
  fi
  COMPREPLY=()
  # "=" separates words for bash: no completion inside NAME=VALUE.
  [[ "$cur" == *=* ]] && return 0
  [[ "$cur" == -* ]] && words+=("$cur")
  cmd="${words[0]}"
  [[ "$cmd" == "~/"* ]] && cmd="$HOME/${cmd:2}"
  out=$("$cmd" "${words[@]:1}" --generate-bash-completion 2>/dev/null) || return 0
  local IFS=$'\n'
  for w in $out; do
    [[ "$w" == "$cur"* ]] && COMPREPLY+=("$w")
  done
  if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == *= ]]; then
    compopt -o nospace 2>/dev/null
  fi
  return 0
}
complete -o default -F _whenlua_complete whenlua
`,
	"zsh": `#compdef whenlua
# zsh completion for whenlua.
# Load it with:  source <(whenlua completion zsh)   (after compinit)
# or save it as _whenlua in a directory of $fpath.
_whenlua() {
  local cur=${words[CURRENT]} w
  local -a args out eq plain
  args=("${(@)words[2,CURRENT-1]}")
  [[ $cur == -* ]] && args+=("$cur")
  out=("${(@f)$(${words[1]} "${(@)args}" --generate-bash-completion 2>/dev/null)}")
  for w in "${(@)out}"; do
    [[ -z $w ]] && continue
    if [[ $w == *= ]]; then eq+=("$w"); else plain+=("$w"); fi
  done
  (( ${#eq} )) && compadd -S '' -- "${(@)eq}"
  (( ${#plain} )) && compadd -- "${(@)plain}"
  (( ${#eq} + ${#plain} )) || _files
}
if [[ "${funcstack[1]}" == _whenlua ]]; then
  _whenlua "$@"
else
  compdef _whenlua whenlua
fi
`,
	"fish": `# fish completion for whenlua.
# Load it with:  whenlua completion fish | source
# or save it as ~/.config/fish/completions/whenlua.fish
function __whenlua_complete
    set -l args (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd $args[1]
    set -e args[1]
    if string match -q -- '-*' $cur
        set -a args $cur
    end
    set -l out ($cmd $args --generate-bash-completion 2>/dev/null)
    if test (count $out) -gt 0
        printf '%s\n' $out
    else
        __fish_complete_path $cur
    end
end
complete -c whenlua -f -a '(__whenlua_complete)'
`,
}
