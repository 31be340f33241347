# SPDX-License-Identifier: MIT
# bash completion for godislock(1), after util-linux's bash-completion/flock.
# Needs only bash (not the bash-completion package). Installed as
# share/bash-completion/completions/godislock; or: source godislock.bash

_godislock_module()
{
	local cur prev OPTS
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	prev="${COMP_WORDS[COMP_CWORD-1]}"

	# The first word: the subcommand, or the top-level options.
	if ((COMP_CWORD == 1)); then
		case $cur in
			-*)
				mapfile -t COMPREPLY < <(compgen -W "--help --version" -- "$cur")
				;;
			*)
				mapfile -t COMPREPLY < <(compgen -W "run" -- "$cur")
				;;
		esac
		return 0
	fi
	if [[ ${COMP_WORDS[1]} != run ]]; then
		return 0
	fi

	# Find where the command starts, as godislock does: at "--" or at the
	# first word that is not an option (nor an option's value). bash splits
	# "--ttl=5s" into "--ttl" "=" "5s".
	local i=2 start=0 word k
	while ((i < COMP_CWORD)); do
		word=${COMP_WORDS[i]}
		case $word in
			--)
				start=$((i + 1))
				break
				;;
			--name|--ttl|--wait|--timeout|--conflict-exit-code|--url|\
			--password-file|--prefix|--connect-timeout|--kill-signal|\
			--kill-after|--command)
				if [[ ${COMP_WORDS[i+1]} == = ]]; then
					i=$((i + 3))
				else
					i=$((i + 2))
				fi
				;;
			--*)
				i=$((i + 1))
				;;
			-?*)
				# A short cluster such as -nw: a value-taking letter at
				# its end takes the next word as its value.
				k=1
				while ((k < ${#word})); do
					case ${word:k:1} in
						w|E|c)
							((k + 1 == ${#word})) && i=$((i + 1))
							break
							;;
					esac
					k=$((k + 1))
				done
				i=$((i + 1))
				;;
			*)
				start=$i
				break
				;;
		esac
	done
	if ((start > 0 && COMP_CWORD >= start)); then
		if ((COMP_CWORD == start)); then
			# The command word: a command, or a path to one.
			mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			if [[ $cur == */* ]]; then
				compopt -o filenames 2>/dev/null
				mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
			fi
		else
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi
		return 0
	fi

	# "--ttl=<TAB>": the value after "=".
	if [[ $cur == = ]]; then
		cur=""
	elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
		prev="${COMP_WORDS[COMP_CWORD-2]}"
	fi

	# A short cluster such as -nw wants a value when its first value-taking
	# letter is its last one.
	if [[ $prev == -[!-]?* ]]; then
		local letters=${prev#-}
		letters=${letters%%[wEc]*}
		if ((${#letters} == ${#prev} - 2)); then
			prev="-${prev: -1}"
		fi
	fi

	case $prev in
		'--ttl'|'--connect-timeout'|'--kill-after')
			mapfile -t COMPREPLY < <(compgen -W "5s 30s 1m 5m" -- "$cur")
			return 0
			;;
		'-w'|'--wait'|'--timeout')
			mapfile -t COMPREPLY < <(compgen -W "0 5s 30s 1m 5m" -- "$cur")
			return 0
			;;
		'-E'|'--conflict-exit-code')
			mapfile -t COMPREPLY < <(compgen -W "0 1 75" -- "$cur")
			return 0
			;;
		'--url')
			compopt -o nospace 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -W "redis:// unix://" -- "$cur")
			return 0
			;;
		'--kill-signal')
			mapfile -t COMPREPLY < <(compgen -W "TERM INT HUP QUIT KILL USR1 USR2 ALRM PIPE" -- "$cur")
			return 0
			;;
		'--password-file')
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			return 0
			;;
		'-c'|'--command')
			mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			return 0
			;;
		'--name'|'--prefix'|'-h'|'--help')
			return 0
			;;
	esac
	case $cur in
		-*)
			OPTS="--help
				--name
				--ttl
				--wait
				--timeout
				--nonblock
				--no-fair
				--limit
				--shared
				--nb
				--no-wait
				--conflict-exit-code
				--url
				--password-file
				--prefix
				--connect-timeout
				--kill-signal
				--kill-after
				--command
				--exclusive
				--close
				--verbose
				--quiet"
			mapfile -t COMPREPLY < <(compgen -W "${OPTS[*]}" -- "$cur")
			return 0
			;;
	esac
	# The command word, given without "--".
	mapfile -t COMPREPLY < <(compgen -c -- "$cur")
	return 0
}
complete -F _godislock_module godislock
