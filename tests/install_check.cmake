# `cmake --install` into a fresh prefix puts every file where it belongs,
# and the installed mmctl runs. Run by CTest (label integration).
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${err}")
endif()
foreach(f
    bin/matchmakerd bin/mmctl bin/mm-gameserver
    share/bash-completion/completions/mmctl
    share/matchmaker/crds/serverpools.matchmaker.dev.yaml
    share/matchmaker/charts/swarm/matchmaker.yml
    share/matchmaker/charts/prometheus/alerts.yml
    share/matchmaker/charts/grafana/matchmaker-dashboard.json
    share/matchmaker/examples/pools/deathmatch-eu.yaml
    share/matchmaker/examples/matchmakerd.toml
    share/doc/matchmaker/README.md
    share/doc/matchmaker/reference.md
    share/doc/matchmaker/migrating-from-go-matchmaker.md)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
execute_process(COMMAND ${PREFIX}/bin/mmctl --version RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^mmctl ")
  message(FATAL_ERROR "the installed mmctl does not run: ${rc} ${out}")
endif()
execute_process(COMMAND ${PREFIX}/bin/matchmakerd --validate ${PREFIX}/share/matchmaker/examples/pools
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed matchmakerd refuses the installed examples: ${out}${err}")
endif()
file(REMOVE_RECURSE ${PREFIX})
