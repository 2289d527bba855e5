# bash completion for mmctl. Installed as
# share/bash-completion/completions/mmctl; or: source <(mmctl completion bash)
_mmctl() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion || return
  else
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local commands="apply get describe delete request health version convert completion"
  local globals="--server --token-file --help --version"
  local cmd="" i
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --server|--token-file) ((i++)) ;;
      -*) ;;
      *) cmd="${words[i]}"; break ;;
    esac
  done
  case "$prev" in
    --server|--client-server) COMPREPLY=($(compgen -W "http://127.0.0.1:3001 http://127.0.0.1:3000" -- "$cur")); return ;;
    -f|--filename|--token-file|--env-file|--registry-auth-out) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -o|--output) COMPREPLY=($(compgen -W "wide yaml json name" -- "$cur")); return ;;
  esac
  local pools=""
  _mmctl_pools() { pools=$(mmctl get pools -o name 2>/dev/null | sed 's#^serverpool/##'); }
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "$commands $globals" -- "$cur")) ;;
    apply) COMPREPLY=($(compgen -W "-f --filename --wait --timeout" -- "$cur")) ;;
    get)
      if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "-o --output -p --pool -w --watch -l --selector --no-headers" -- "$cur"))
      elif [[ " ${words[*]} " != *" pools "* && " ${words[*]} " != *" instances "* ]]; then
        COMPREPLY=($(compgen -W "pools instances" -- "$cur"))
      else
        _mmctl_pools; COMPREPLY=($(compgen -W "$pools" -- "$cur"))
      fi ;;
    describe|delete)
      if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "--force --ignore-not-found" -- "$cur"))
      elif [[ " ${words[*]} " != *" pool "* ]]; then
        COMPREPLY=($(compgen -W "pool" -- "$cur"))
      else
        _mmctl_pools; COMPREPLY=($(compgen -W "$pools" -- "$cur"))
      fi ;;
    request) COMPREPLY=($(compgen -W "--client --pool --client-server" -- "$cur")) ;;
    health) COMPREPLY=($(compgen -W "--ready" -- "$cur")) ;;
    version) COMPREPLY=($(compgen -W "--client" -- "$cur")) ;;
    convert) COMPREPLY=($(compgen -W "go-matchmaker --env-file --name --warm --registry-auth-out" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
  esac
}
complete -F _mmctl mmctl
