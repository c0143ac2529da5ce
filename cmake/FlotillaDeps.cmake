# Finds every library Flotilla links with pkg-config and stops configuration
# with the Debian package to install when one is missing.
find_package(Threads REQUIRED)
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
    message(FATAL_ERROR "pkg-config not found\nHint: apt-get install pkg-config (or run deploy/install-deps.sh)")
endif()

# fl_require(<prefix> <pkg-config module> <debian package>)
function(fl_require prefix module debpkg)
    pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
    if(NOT ${prefix}_FOUND)
        message(FATAL_ERROR "required library \"${module}\" not found\n"
            "Hint: apt-get install ${debpkg} (or run deploy/install-deps.sh)")
    endif()
endfunction()

fl_require(PQ        libpq         libpq-dev)
fl_require(YAML      yaml-0.1      libyaml-dev)
fl_require(JANSSON   jansson       libjansson-dev)
fl_require(SODIUM    libsodium     libsodium-dev)
fl_require(CRYPTO    libcrypto     libssl-dev)
fl_require(MSGPACK   msgpack       libmsgpack-dev)
fl_require(ZMQ       libzmq        libzmq3-dev)
fl_require(CZMQ      libczmq       libczmq-dev)
fl_require(PROTOBUFC libprotobuf-c libprotobuf-c-dev)
fl_require(MHD       libmicrohttpd libmicrohttpd-dev)

# libpg_query ships no pkg-config file in Debian.
find_path(PG_QUERY_INCLUDE_DIR pg_query.h)
find_library(PG_QUERY_LIBRARY NAMES pg_query)
if(NOT PG_QUERY_INCLUDE_DIR OR NOT PG_QUERY_LIBRARY)
    message(FATAL_ERROR "required library \"libpg_query\" not found\n"
        "Hint: apt-get install libpg-query-dev (or run deploy/install-deps.sh)")
endif()
add_library(fl_pg_query INTERFACE IMPORTED GLOBAL)
target_include_directories(fl_pg_query SYSTEM INTERFACE ${PG_QUERY_INCLUDE_DIR})
target_link_libraries(fl_pg_query INTERFACE ${PG_QUERY_LIBRARY})

if(FLOTILLA_TESTS)
    fl_require(CMOCKA cmocka libcmocka-dev)
    if(CMOCKA_VERSION VERSION_LESS 1.1)
        message(FATAL_ERROR "cmocka ${CMOCKA_VERSION} is too old; 1.1 or newer is needed")
    endif()
endif()

find_program(PG_CTL pg_ctl PATHS /usr/lib/postgresql/15/bin NO_DEFAULT_PATH)
