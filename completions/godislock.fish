# SPDX-License-Identifier: MIT
# fish completion for godislock(1). Installed as
# share/fish/vendor_completions.d/godislock.fish; or: source godislock.fish
# (`godislock completion fish` prints this file).

# Succeeds when no subcommand has been typed yet.
function __godislock_needs_subcommand
    test (count (commandline -opc)) -eq 1
end

# Succeeds when the subcommand is one of the arguments.
function __godislock_using
    set -l words (commandline -opc)
    contains -- "$words[2]" $argv
end

# For `godislock run`: prints the index in (commandline -opc) of the first
# word of the command, found as godislock finds it (at "--" or at the first
# word that is neither an option nor an option's value); fails while the
# options are still being typed. An index past the end means that the
# command word itself is being completed.
function __godislock_run_command_start
    set -l words (commandline -opc)
    test "$words[2]" = run; or return 1
    set -l i 3
    while test $i -le (count $words)
        set -l word $words[$i]
        switch $word
            case --
                math $i + 1
                return 0
            case --name --ttl --wait --timeout --conflict-exit-code --limit \
                --url --password-file --prefix --connect-timeout \
                --user --cacert --cacertdir --cert --key --sni \
                --kill-signal --kill-after --command \
                --sentinel-user --sentinel-password-file --replicas \
                --replica-timeout
                set i (math $i + 2)
            case '--*'
                set i (math $i + 1)
            case '-?*'
                # A short cluster such as -nw: a value-taking letter at its
                # end takes the next word as its value.
                if string match -qr -- '^-[^wEc]*[wEc]$' $word
                    set i (math $i + 2)
                else
                    set i (math $i + 1)
                end
            case '*'
                echo $i
                return 0
        end
    end
    return 1
end

# Succeeds while the options of `godislock run` are being typed.
function __godislock_run_options
    __godislock_using run; and not __godislock_run_command_start
end

# Completes the command given to `godislock run` and its arguments with the
# command's own completion.
function __godislock_complete_command
    set -l words (commandline -opc)
    set -l start (__godislock_run_command_start)
    if test $status -ne 0
        # Still among the options: only a word that is not one of them
        # can be the command.
        string match -q -- '-*' (commandline -ct); and return 0
        set start (math (count $words) + 1)
    end
    set -l command
    if test $start -le (count $words)
        set command $words[$start..-1]
    end
    __fish_complete_subcommand --commandline $command (commandline -ct)
end

complete -c godislock -f

# Top level.
complete -c godislock -n __godislock_needs_subcommand -l help -d 'Show the help and exit'
complete -c godislock -n __godislock_needs_subcommand -l version -d 'Show the version and exit'
complete -c godislock -n __godislock_needs_subcommand -a run -d 'Take the lock, run a command, pass its exit status on'
complete -c godislock -n __godislock_needs_subcommand -a status -d 'Show the holders and waiters of locks'
complete -c godislock -n __godislock_needs_subcommand -a release -d 'Force the release of a lock'
complete -c godislock -n __godislock_needs_subcommand -a completion -d 'Print the completion script for a shell'
complete -c godislock -n __godislock_needs_subcommand -a acl-rule -d 'Print the least-privilege Redis ACL rule'
complete -c godislock -n '__godislock_using acl-rule' -s h -l help -d 'Show the help and exit'
complete -c godislock -n '__godislock_using acl-rule' -l prefix -x -d 'Key namespace (default "godislock:")'
complete -c godislock -n '__godislock_using acl-rule' -l read-only -d 'The rule of a user who may only run status'

# BEGIN connection options (run, status, release)
set -l __godislock_conn '__godislock_run_options; or __godislock_using status release'
complete -c godislock -n $__godislock_conn -s h -l help -d 'Show the help and exit'
complete -c godislock -n $__godislock_conn -l url -x -a 'redis:// rediss:// redis-sentinel:// redis-cluster:// unix:// etcd:// etcds://' -d 'Redis URL (env GODISLOCK_URL)'
complete -c godislock -n $__godislock_conn -l password-file -r -F -d 'Read the Redis password from FILE'
complete -c godislock -n $__godislock_conn -l user -x -d 'Redis ACL user name'
complete -c godislock -n $__godislock_conn -l tls -d 'Use TLS with a redis:// URL'
complete -c godislock -n $__godislock_conn -l cacert -r -F -d 'Trust the CA certificates in FILE'
complete -c godislock -n $__godislock_conn -l cacertdir -x -a '(__fish_complete_directories)' -d 'Trust the CA certificates in DIR'
complete -c godislock -n $__godislock_conn -l cert -r -F -d 'Client certificate (PEM)'
complete -c godislock -n $__godislock_conn -l key -r -F -d "The client certificate's private key"
complete -c godislock -n $__godislock_conn -l sni -x -a '(__fish_print_hostnames)' -d 'TLS server name to send and check'
complete -c godislock -n $__godislock_conn -l insecure -d "Do not verify the server's certificate (warned about)"
complete -c godislock -n $__godislock_conn -l prefix -x -d 'Key namespace (default "godislock:")'
complete -c godislock -n $__godislock_conn -l connect-timeout -x -a '1s 5s 30s' -d 'Deadline for connecting and each Redis call'
complete -c godislock -n $__godislock_conn -s v -l verbose -d 'Say what happens (never prints passwords)'
complete -c godislock -n $__godislock_conn -s q -l quiet -d 'Print errors only'
complete -c godislock -n $__godislock_conn -l sentinel-user -x -d 'User name for the sentinels of a redis-sentinel:// URL'
complete -c godislock -n $__godislock_conn -l sentinel-password-file -r -F -d 'Read the sentinels\' password from FILE'
# END connection options

# BEGIN run options
complete -c godislock -n __godislock_run_options -l name -x -d 'Lock name (default: derived from the command)'
complete -c godislock -n __godislock_run_options -l ttl -x -a '5s 30s 1m 5m' -d 'Lease if godislock dies, refreshed every ttl/3'
complete -c godislock -n __godislock_run_options -s w -l wait -x -a '0 5s 30s 1m 5m' -d 'Give up waiting after DURATION (0: one try)'
complete -c godislock -n __godislock_run_options -l timeout -x -a '0 5s 30s 1m 5m' -d 'Same as --wait'
complete -c godislock -n __godislock_run_options -s n -l nonblock -d 'Fail at once if the lock is held'
complete -c godislock -n __godislock_run_options -l nb -d 'Same as --nonblock'
complete -c godislock -n __godislock_run_options -l no-wait -d 'Same as --nonblock'
complete -c godislock -n __godislock_run_options -l no-fair -d 'Race for the lock instead of queueing in arrival order'
complete -c godislock -n __godislock_run_options -l wait-tree -d 'Hold the lock until every descendant of the command has exited'
complete -c godislock -n __godislock_run_options -s E -l conflict-exit-code -x -a '0 1 75' -d 'Exit code when the lock is not acquired (default 75)'
complete -c godislock -n __godislock_run_options -l limit -x -a '2 3 4 8' -d 'Counted lock: up to N holders at once'
complete -c godislock -n __godislock_run_options -s s -l shared -d 'Shared lock (like flock -s)'
complete -c godislock -n __godislock_run_options -s x -l exclusive -d 'Exclusive lock (the default)'
complete -c godislock -n __godislock_run_options -l kill-signal -x -a 'TERM INT HUP QUIT KILL USR1 USR2 ALRM PIPE' -d 'Signal sent to the command when the lock is lost'
complete -c godislock -n __godislock_run_options -l kill-after -x -a '1s 5s 10s' -d 'Then SIGKILL after DURATION'
complete -c godislock -n __godislock_run_options -s c -l command -x -a '(__fish_complete_command)' -d 'Run SHELL COMMAND with /bin/sh -c'
complete -c godislock -n __godislock_run_options -s o -l close -d 'Accepted for flock(1) compatibility'
complete -c godislock -n __godislock_run_options -l replicas -x -a '1 2' -d 'Count a hold only once N replicas acknowledged it'
complete -c godislock -n __godislock_run_options -l replica-timeout -x -a '100ms 1s 5s' -d 'How long to wait for --replicas each time'
# END run options
# The command and its arguments, with or without "--" before them.
complete -c godislock -n '__godislock_using run' -a '(__godislock_complete_command)'

# status and release.
complete -c godislock -n '__godislock_using status' -l json -d 'Print JSON'
complete -c godislock -n '__godislock_using release' -l force -d 'Release the lock without holding its token'

# completion.
complete -c godislock -n '__godislock_using completion; and test (count (commandline -opc)) -eq 2' -a 'bash zsh fish'
complete -c godislock -n '__godislock_using completion' -s h -l help -d 'Show the help and exit'
