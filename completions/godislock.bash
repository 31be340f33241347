# SPDX-License-Identifier: MIT
# bash completion for godislock(1), after util-linux's bash-completion/flock.
# Needs only bash; with the bash-completion package loaded, the command after
# "godislock run" completes with that command's own completion
# (_command_offset). Installed as share/bash-completion/completions/godislock;
# or: source godislock.bash (`godislock completion bash` prints this file).

# Offers the values of option $1 for the word $2 being completed; returns 1
# when $1 takes no value (or is not an option of godislock).
_godislock_value()
{
	local opt=$1 cur=$2
	case $opt in
		'--ttl'|'--connect-timeout'|'--kill-after'|'--replica-timeout')
			mapfile -t COMPREPLY < <(compgen -W "5s 30s 1m 5m" -- "$cur")
			;;
		'-w'|'--wait'|'--timeout')
			mapfile -t COMPREPLY < <(compgen -W "0 5s 30s 1m 5m" -- "$cur")
			;;
		'-E'|'--conflict-exit-code')
			mapfile -t COMPREPLY < <(compgen -W "0 1 75" -- "$cur")
			;;
		'--replicas')
			mapfile -t COMPREPLY < <(compgen -W "1 2" -- "$cur")
			;;
		'--limit')
			mapfile -t COMPREPLY < <(compgen -W "2 3 4 8" -- "$cur")
			;;
		'--url')
			compopt -o nospace 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -W "redis:// rediss:// redis-sentinel:// redis-cluster:// unix:// etcd:// etcds://" -- "$cur")
			;;
		'--kill-signal')
			mapfile -t COMPREPLY < <(compgen -W "TERM INT HUP QUIT KILL USR1 USR2 ALRM PIPE" -- "$cur")
			;;
		'--password-file'|'--sentinel-password-file'|'--cacert'|'--cert'|'--key')
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			;;
		'--cacertdir')
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
			;;
		'--sni')
			mapfile -t COMPREPLY < <(compgen -A hostname -- "$cur")
			;;
		'-c'|'--command')
			mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			;;
		'--name'|'--prefix'|'--user'|'--sentinel-user')
			;;
		*)
			return 1
			;;
	esac
	return 0
}

# Completes the command that starts at COMP_WORDS[$1] and its arguments.
_godislock_command()
{
	local start=$1 cur=$2
	# bash-completion's _command_offset hands over to the command's own
	# completion (git, ssh, make ...), as sudo's completion does.
	if declare -F _command_offset >/dev/null; then
		_command_offset "$start"
		return 0
	fi
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
}

_godislock_module()
{
	local cur prev sub OPTS
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
				mapfile -t COMPREPLY < <(compgen -W "run status release completion acl-rule" -- "$cur")
				;;
		esac
		return 0
	fi
	sub=${COMP_WORDS[1]}

	if [[ $sub == acl-rule ]]; then
		if [[ $prev != --prefix ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--help --prefix --read-only" -- "$cur")
		fi
		return 0
	fi

	if [[ $sub == completion ]]; then
		case $cur in
			-*)
				mapfile -t COMPREPLY < <(compgen -W "--help" -- "$cur")
				;;
			*)
				if ((COMP_CWORD == 2)); then
					mapfile -t COMPREPLY < <(compgen -W "bash zsh fish" -- "$cur")
				fi
				;;
		esac
		return 0
	fi
	case $sub in
		run|status|release) ;;
		*) return 0 ;;
	esac

	# run: find where the command starts, as godislock does: at "--" or at
	# the first word that is not an option (nor an option's value). bash
	# splits "--ttl=5s" into "--ttl" "=" "5s".
	local i=2 start=0 word k
	while [[ $sub == run ]] && ((i < COMP_CWORD)); do
		word=${COMP_WORDS[i]}
		case $word in
			--)
				start=$((i + 1))
				break
				;;
			--name|--ttl|--wait|--timeout|--conflict-exit-code|--limit|\
			--url|--password-file|--prefix|--connect-timeout|\
			--user|--cacert|--cacertdir|--cert|--key|--sni|\
			--kill-signal|--kill-after|--command|\
			--sentinel-user|--sentinel-password-file|--replicas|\
			--replica-timeout)
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
		_godislock_command "$start" "$cur"
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
	if [[ $sub == run && $prev == -[!-]?* ]]; then
		local letters=${prev#-}
		letters=${letters%%[wEc]*}
		if ((${#letters} == ${#prev} - 2)); then
			prev="-${prev: -1}"
		fi
	fi

	if [[ $prev == -h || $prev == --help ]]; then
		return 0
	fi
	if _godislock_value "$prev" "$cur"; then
		return 0
	fi

	case $cur in
		-*)
			# The options of every subcommand that talks to Redis.
			OPTS="--help
				--url
				--password-file
				--user
				--tls
				--cacert
				--cacertdir
				--cert
				--key
				--sni
				--insecure
				--prefix
				--connect-timeout
				--verbose
				--quiet
				--sentinel-user
				--sentinel-password-file"
			case $sub in
				run)
					OPTS+="
						--name
						--ttl
						--wait
						--timeout
						--nonblock
						--nb
						--no-wait
						--no-fair
						--wait-tree
						--conflict-exit-code
						--limit
						--shared
						--exclusive
						--kill-signal
						--kill-after
						--command
						--close
						--replicas
						--replica-timeout"
					;;
				status)
					OPTS+=" --json"
					;;
				release)
					OPTS+=" --force"
					;;
			esac
			mapfile -t COMPREPLY < <(compgen -W "${OPTS[*]}" -- "$cur")
			return 0
			;;
	esac
	if [[ $sub == run ]]; then
		# The command word, given without "--".
		_godislock_command "$COMP_CWORD" "$cur"
	fi
	return 0
}
complete -F _godislock_module godislock
