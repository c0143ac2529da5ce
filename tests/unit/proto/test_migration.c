/*
 * Unit tests for proto/migration: parsing migration files (sections,
 * options, every error with its file and line), checksums, and loading a
 * migrations directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "proto/migration.h"
#include "testsupport.h"

static const char s_full[] =
    "-- a leading comment is fine\n"
    "-- flotilla:options lock_timeout=2s statement_timeout=5min\n"
    "-- flotilla:options no-transaction allow=ban-drop-table legacy table, "
    "ticket 42\n"
    "-- flotilla:validate\n"
    "SELECT count(*) = 0 FROM users WHERE email IS NULL;\n"
    "-- flotilla:up\n"
    "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
    "--flotilla:down\n"
    "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;\n"
    "  -- flotilla:verify  \n"
    "SELECT email FROM users LIMIT 0;\n";

static void
test_migration_parse_full_file_fills_every_field(void **state)
{
    fl_migration_t m;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_migration_parse(&m, "0007_email_not_null.sql", s_full,
                                        strlen(s_full), &err), 0);
    assert_string_equal(m.version.text, "7");
    assert_string_equal(m.name, "email_not_null");
    assert_string_equal(m.file, "0007_email_not_null.sql");
    assert_string_equal(m.validate,
                        "SELECT count(*) = 0 FROM users WHERE email IS NULL;\n");
    assert_string_equal(m.up, "ALTER TABLE users ALTER COLUMN email SET NOT "
                              "NULL;\n");
    assert_string_equal(m.down, "ALTER TABLE users ALTER COLUMN email DROP NOT "
                                "NULL;\n");
    assert_string_equal(m.verify, "SELECT email FROM users LIMIT 0;\n");
    assert_int_equal(m.validate_line, 5);
    assert_int_equal(m.up_line, 7);
    assert_int_equal(m.down_line, 9);
    assert_int_equal(m.verify_line, 11);
    assert_int_equal(m.no_transaction, 1);
    assert_int_equal(m.lock_timeout_ms, 2000);
    assert_int_equal(m.statement_timeout_ms, 300000);
    assert_int_equal(m.nallows, 1);
    assert_string_equal(m.allows[0].rule, "ban-drop-table");
    assert_string_equal(m.allows[0].reason, "legacy table, ticket 42");
    assert_int_equal(strlen(m.checksum_hex), 64);
    fl_migration_release(&m);
    assert_null(m.up);
}

static void
test_migration_parse_minimal_file_leaves_options_unset(void **state)
{
    const char *text = "-- flotilla:up\nSELECT 1;";
    fl_migration_t m;

    (void)state;
    assert_int_equal(fl_migration_parse(&m, "1_a.sql", text, strlen(text),
                                        NULL), 0);
    assert_string_equal(m.up, "SELECT 1;");
    assert_null(m.down);
    assert_int_equal(m.down_line, 0);
    assert_int_equal(m.lock_timeout_ms, -1);
    assert_int_equal(m.statement_timeout_ms, -1);
    assert_int_equal(m.no_transaction, 0);
    fl_migration_release(&m);
    /* Flyway's dotted versions, as flotilla import writes them */
    assert_int_equal(fl_migration_parse(&m, "1.02_a.sql", text, strlen(text),
                                        NULL), 0);
    assert_string_equal(m.version.text, "1.2");
    assert_int_equal(fl_migration_check(&m, NULL), 0);
    fl_migration_release(&m);
}

/*
 * A migration of several files (pop's groups): its parts are versions in
 * increasing order, the last one its own; anything else is refused, and
 * so is a note that is not UTF-8.
 */
static void
test_migration_check_parts_of_a_group(void **state)
{
    const char *text = "-- flotilla:up\nSELECT 1;";
    static const char *const bad[][3] = {
        {"1", "x", "3"},            /* not a version */
        {"1", "01", "3"},           /* not canonical */
        {"2", "1", "3"},            /* out of order */
        {"1", "1", "3"},            /* repeated */
        {"1", "2", "4"},            /* the last is not the migration's */
    };
    fl_migration_t m;
    fl_error_t err = FL_ERROR_INIT;
    char *ok[3] = {"1", "2", "3"};

    (void)state;
    assert_int_equal(fl_migration_parse(&m, "3_a.sql", text, strlen(text),
                                        NULL), 0);
    m.parts = ok;
    m.nparts = 3;
    assert_int_equal(fl_migration_check(&m, NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m.parts = (char **)bad[i];
        assert_int_equal(fl_migration_check(&m, &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "has an invalid part"));
        fl_error_clear(&err);
    }
    m.nparts = FL_MIGRATION_MAX_PARTS + 1;
    assert_int_equal(fl_migration_check(&m, &err), FL_EINVAL);
    fl_error_clear(&err);
    m.parts = NULL;
    m.nparts = 0;
    /* A bundle's note is shown to operators: UTF-8, as the sections. */
    m.note = (char *)"a group \xff";
    assert_int_equal(fl_migration_check(&m, &err), FL_EINVAL);
    fl_error_clear(&err);
    m.note = NULL;
    fl_migration_release(&m);
}

/* Parses text as file and expects an FL_EINVAL naming file and line. */
static void
s_expect_error(const char *file, const char *text, size_t len, int line,
               const char *needle)
{
    fl_migration_t m;
    fl_error_t err = FL_ERROR_INIT;
    char *where = fl_asprintf("in file \"%s\" line %d", file, line);

    assert_int_equal(fl_migration_parse(&m, file, text, len, &err), FL_EINVAL);
    if (strstr(err.message, needle) == NULL || strstr(err.message, where) == NULL)
        fail_msg("got \"%s\", wanted \"%s\" and \"%s\"", err.message, needle,
                 where);
    assert_null(m.up);
    assert_null(m.name);
    free(where);
    fl_error_clear(&err);
}

static void
s_expect(const char *text, int line, const char *needle)
{
    s_expect_error("0003_x.sql", text, strlen(text), line, needle);
}

static void
test_migration_parse_errors_name_file_and_line(void **state)
{
    (void)state;
    s_expect("-- flotilla:down\nDROP TABLE t;\n", 2, "no \"up\" section");
    s_expect("\n-- flotilla:up\nSELECT 1;\n-- flotilla:upp\nx\n", 4,
             "unknown section \"upp\"");
    s_expect("-- flotilla:options lock_timeout=2s frobnicate\n"
             "-- flotilla:up\nSELECT 1;\n", 1, "unknown option \"frobnicate\"");
    s_expect("-- flotilla:options\n-- flotilla:options lock_timeout=2\n"
             "-- flotilla:up\nSELECT 1;\n", 2,
             "invalid value for option \"lock_timeout\"");
    s_expect("-- flotilla:options statement_timeout=5parsecs\n"
             "-- flotilla:up\nSELECT 1;\n", 1,
             "invalid value for option \"statement_timeout\"");
    s_expect("-- flotilla:options lock_timeout=1s lock_timeout=2s\n"
             "-- flotilla:up\nSELECT 1;\n", 1, "given twice");
    s_expect("-- flotilla:options allow=ban-drop-table   \n"
             "-- flotilla:up\nSELECT 1;\n", 1, "has no reason");
    /* An allow ends its line: an option after it would be its reason
     * (before, the timeout was dropped without a word). */
    s_expect("-- flotilla:options allow=ban-drop-column unused column "
             "statement_timeout=5s\n-- flotilla:up\nSELECT 1;\n", 1,
             "the reason of option \"allow=ban-drop-column\" holds "
             "\"statement_timeout=5s\"");
    s_expect("-- flotilla:options allow=a why allow=b why\n"
             "-- flotilla:up\nSELECT 1;\n", 1, "holds \"allow=b\"");
    s_expect("-- flotilla:up\nSELECT 1;\n-- flotilla:up\nSELECT 2;\n", 3,
             "section \"up\" appears twice");
    s_expect("SELECT 1;\n-- flotilla:up\nSELECT 1;\n", 1,
             "SQL text before the first section marker");
    s_expect("-- flotilla:up\nSELECT 1;\n-- flotilla:options no-transaction\n",
             3, "options must come before the first section");
    s_expect("-- flotilla:up\n\n   \n-- flotilla:down\nSELECT 1;\n", 1,
             "section \"up\" is empty");
    s_expect("-- flotilla:up now\nSELECT 1;\n", 1, "unexpected text after");
    /* PostgreSQL takes at most 2147483647 ms: more fails at apply. */
    s_expect("-- flotilla:options lock_timeout=30d\n-- flotilla:up\n"
             "SELECT 1;\n", 1, "option \"lock_timeout\" is more than"
             " PostgreSQL's limit of 2147483647 ms");
    s_expect("-- flotilla:options statement_timeout=25d\n-- flotilla:up\n"
             "SELECT 1;\n", 1, "option \"statement_timeout\" is more than");
}

/*
 * A timeout PostgreSQL cannot set is refused where the migration is read
 * (its file, or a signed bundle's decoded migration), never first by
 * the server, after the migrations before it were applied.  Before, a
 * bundle with lock_timeout=30d was built, signed and verified, and
 * apply failed at it with "invalid value for parameter" (found by an
 * audit).
 */
static void
test_migration_timeouts_are_ones_postgresql_can_set(void **state)
{
    const char *text = "-- flotilla:options statement_timeout=24d\n"
                       "-- flotilla:up\nSELECT 1;";
    static const int64_t bad[] = {-77, -2, (int64_t)1 << 62,
                                  (int64_t)2147483647 + 1};
    fl_migration_t m;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_migration_parse(&m, "3_a.sql", text, strlen(text),
                                        NULL), 0);
    assert_int_equal(m.statement_timeout_ms, 24LL * 86400 * 1000);
    assert_int_equal(fl_migration_check(&m, NULL), 0);
    m.lock_timeout_ms = 2147483647;
    assert_int_equal(fl_migration_check(&m, NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m.lock_timeout_ms = bad[i];
        assert_int_equal(fl_migration_check(&m, &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "lock_timeout"));
        fl_error_clear(&err);
        m.lock_timeout_ms = -1;
        m.statement_timeout_ms = bad[i];
        assert_int_equal(fl_migration_check(&m, &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "statement_timeout"));
        fl_error_clear(&err);
        m.statement_timeout_ms = -1;
    }
    fl_migration_release(&m);
}

static void
test_migration_parse_non_utf8_is_refused_with_its_line(void **state)
{
    const char bad[] = "-- flotilla:up\nSELECT 1;\nSELECT '\xff';\n";
    const char overlong[] = "-- flotilla:up\nSELECT '\xc0\xaf';\n";
    const char nul[] = "-- flotilla:up\nSELECT 1;\0\n";
    const char ok[] = "-- flotilla:up\nSELECT 'gr\xc3\xbc\xc3\x9f \xe2\x82\xac';\n";
    fl_migration_t m;

    (void)state;
    s_expect_error("0003_x.sql", bad, sizeof(bad) - 1, 3, "invalid UTF-8");
    s_expect_error("0003_x.sql", overlong, sizeof(overlong) - 1, 2,
                   "invalid UTF-8");
    s_expect_error("0003_x.sql", nul, sizeof(nul) - 1, 2, "invalid UTF-8");
    assert_int_equal(fl_migration_parse(&m, "1_a.sql", ok, sizeof(ok) - 1,
                                        NULL), 0);
    fl_migration_release(&m);
}

static void
test_migration_parse_bad_file_names_are_refused(void **state)
{
    const char *names[] = {"create.sql", "0001create.sql", "_zero.sql",
                           "1..2_x.sql", ".1_x.sql", "1._x.sql", "1-2_x.sql",
                           "0001_.sql", "0001_a b.sql", "0001_a.txt",
                           /* 65 digits: longer than FL_VERSION_MAX */
                           "9999999999999999999999999999999999999999999999999"
                           "9999999999999999_big.sql",
                           NULL};
    const char *text = "-- flotilla:up\nSELECT 1;\n";
    fl_error_t err = FL_ERROR_INIT;
    fl_migration_t m;

    (void)state;
    for (int i = 0; names[i]; i++) {
        assert_int_equal(fl_migration_parse(&m, names[i], text, strlen(text),
                                            &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "invalid migration file name"));
        assert_non_null(strstr(err.message, names[i]));
        assert_non_null(err.hint);
        fl_error_clear(&err);
    }
}

static void
test_migration_checksum_covers_content_and_options(void **state)
{
    const char *a = "-- flotilla:up\nSELECT 1;\n";
    const char *b = "-- flotilla:up\nSELECT 2;\n";
    const char *c = "-- flotilla:options lock_timeout=1s\n-- flotilla:up\n"
                    "SELECT 1;\n";
    const char *d = "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 1;\n";
    fl_migration_t ma, ma2, mb, mc, md, mn;

    (void)state;
    assert_int_equal(fl_migration_parse(&ma, "1_a.sql", a, strlen(a), NULL), 0);
    assert_int_equal(fl_migration_parse(&ma2, "0001_a.sql", a, strlen(a), NULL),
                     0);
    assert_int_equal(fl_migration_parse(&mb, "1_a.sql", b, strlen(b), NULL), 0);
    assert_int_equal(fl_migration_parse(&mc, "1_a.sql", c, strlen(c), NULL), 0);
    assert_int_equal(fl_migration_parse(&md, "1_a.sql", d, strlen(d), NULL), 0);
    assert_int_equal(fl_migration_parse(&mn, "1_b.sql", a, strlen(a), NULL), 0);
    /* Same version, name and content: same checksum, file name aside. */
    assert_string_equal(ma.checksum_hex, ma2.checksum_hex);
    assert_string_not_equal(ma.checksum_hex, mb.checksum_hex);
    assert_string_not_equal(ma.checksum_hex, mc.checksum_hex);
    assert_string_not_equal(ma.checksum_hex, md.checksum_hex);
    assert_string_not_equal(ma.checksum_hex, mn.checksum_hex);
    /* Recomputing gives the same; changing a field changes it. */
    fl_migration_compute_checksum(&ma);
    assert_string_equal(ma.checksum_hex, ma2.checksum_hex);
    ma.no_transaction = 1;
    fl_migration_compute_checksum(&ma);
    assert_string_not_equal(ma.checksum_hex, ma2.checksum_hex);
    fl_migration_release(&ma);
    fl_migration_release(&ma2);
    fl_migration_release(&mb);
    fl_migration_release(&mc);
    fl_migration_release(&md);
    fl_migration_release(&mn);
}

/*
 * The up checksum leaves down out (a fixed down is not drift) and covers
 * the rest; the down checksum tells an absent down from an empty one; a
 * ledger's sum says m was applied when it is m's full or up checksum.
 */
static void
test_migration_up_and_down_checksums(void **state)
{
    const char *a = "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 1\n"
                    "SELECT 2;\n";
    const char *b = "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 1;\n";
    const char *c = "-- flotilla:up\nSELECT 2;\n-- flotilla:down\nSELECT 1;\n";
    fl_migration_t ma, mb, mc;
    unsigned char ua[32], ub[32], uc[32], d1[32], d2[32];

    (void)state;
    assert_int_equal(fl_migration_parse(&ma, "1_a.sql", a, strlen(a), NULL), 0);
    assert_int_equal(fl_migration_parse(&mb, "1_a.sql", b, strlen(b), NULL), 0);
    assert_int_equal(fl_migration_parse(&mc, "1_a.sql", c, strlen(c), NULL), 0);
    fl_migration_up_checksum(ua, &ma);
    fl_migration_up_checksum(ub, &mb);
    fl_migration_up_checksum(uc, &mc);
    assert_memory_equal(ua, ub, 32);
    assert_memory_not_equal(ua, uc, 32);
    assert_memory_not_equal(ua, ma.checksum, 32);
    assert_string_not_equal(ma.checksum_hex, mb.checksum_hex);
    fl_migration_down_checksum(d1, ma.down);
    fl_migration_down_checksum(d2, mb.down);
    assert_memory_not_equal(d1, d2, 32);
    fl_migration_down_checksum(d1, NULL);
    fl_migration_down_checksum(d2, "");
    assert_memory_not_equal(d1, d2, 32);
    /* What a ledger recorded for a's version says b is the one applied. */
    assert_true(fl_migration_is_applied_as(&mb, ua));
    assert_true(fl_migration_is_applied_as(&mb, mb.checksum));
    assert_false(fl_migration_is_applied_as(&mb, ma.checksum));
    assert_false(fl_migration_is_applied_as(&mc, ua));
    fl_migration_release(&ma);
    fl_migration_release(&mb);
    fl_migration_release(&mc);
}

static char *
s_file(const char *dir, const char *name, const char *content)
{
    char *path = fl_asprintf("%s/%s", dir, name);

    fl_test_write_file(path, content);
    return path;
}

static void
test_migration_dir_load_orders_by_version(void **state)
{
    char *dir = fl_test_tmpdir();
    fl_migration_list_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    free(s_file(dir, "10_c.sql", "-- flotilla:up\nSELECT 10;\n"));
    free(s_file(dir, "0002_b.sql", "-- flotilla:up\nSELECT 2;\n"));
    free(s_file(dir, "0001_a.sql", "-- flotilla:up\nSELECT 1;\n"));
    free(s_file(dir, "README.md", "not a migration"));
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), 0);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[0].version.text, "1");
    assert_string_equal(l.items[1].version.text, "2");
    assert_string_equal(l.items[2].version.text, "10");
    assert_string_equal(l.items[2].file, "10_c.sql");
    fl_migration_list_release(&l);
    assert_null(l.items);
    fl_test_rmtree(dir);
    free(dir);
}

static void
test_migration_dir_load_refuses_empty_duplicate_and_bad_files(void **state)
{
    char *dir = fl_test_tmpdir();
    char *p = NULL;
    fl_migration_list_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "holds no migration files"));
    fl_error_clear(&err);

    free(s_file(dir, "0001_a.sql", "-- flotilla:up\nSELECT 1;\n"));
    p = s_file(dir, "1_b.sql", "-- flotilla:up\nSELECT 1;\n");
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "duplicate migration version 1"));
    assert_non_null(strstr(err.detail, "1_b.sql"));
    fl_error_clear(&err);
    unlink(p);
    free(p);

    p = s_file(dir, "0002_b.sql", "-- flotilla:up\nSELECT 1;\n-- flotilla:nope\n");
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message,
                           "unknown section \"nope\" in file \"0002_b.sql\" "
                           "line 3"));
    fl_error_clear(&err);
    unlink(p);
    free(p);

    free(s_file(dir, "third.sql", "-- flotilla:up\nSELECT 1;\n"));
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "\"third.sql\""));
    fl_error_clear(&err);
    assert_null(l.items);

    assert_int_equal(fl_migration_dir_load(&l, "/nonexistent/dir", &err),
                     FL_ENOTFOUND);
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A migration file is read only from the directory: a symbolic link to a
 * file outside it (a key, a password file) is refused, naming the link
 * and where it leads, where before its text was loaded as a migration,
 * packed into a signed bundle and run as SQL; a link to a file inside the
 * directory is read.  A FIFO is refused without being opened (opening it
 * waited for a writer for ever).
 */
static void
test_migration_dir_load_refuses_links_out_of_the_directory(void **state)
{
    char *dir = fl_test_tmpdir(), *other = fl_test_tmpdir();
    char *secret = s_file(other, "secret.txt",
                          "-- flotilla:up\nSELECT 'a password';\n");
    char *link = fl_asprintf("%s/0002_b.sql", dir);
    char *sub = fl_asprintf("%s/shared", dir), *fifo = NULL;
    fl_migration_list_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    free(s_file(dir, "0001_a.sql", "-- flotilla:up\nSELECT 1;\n"));
    assert_int_equal(symlink(secret, link), 0);
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    if (strstr(err.message, "0002_b.sql") == NULL ||
        strstr(err.message, "symbolic link") == NULL ||
        strstr(err.message, "outside") == NULL)
        fail_msg("the refusal: %s", err.message);
    fl_error_clear(&err);
    assert_null(l.items);
    /* Inside the directory: read. */
    assert_int_equal(unlink(link), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    free(s_file(sub, "b.sql", "-- flotilla:up\nSELECT 2;\n"));
    assert_int_equal(symlink("shared/b.sql", link), 0);
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), 0);
    assert_int_equal(l.count, 2);
    fl_migration_list_release(&l);
    /* A FIFO. */
    fifo = fl_asprintf("%s/0003_c.sql", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    if (strstr(err.message, "0003_c.sql") == NULL ||
        strstr(err.message, "not a regular file") == NULL)
        fail_msg("the refusal: %s", err.message);
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    fl_test_rmtree(other);
    free(fifo);
    free(sub);
    free(link);
    free(secret);
    free(other);
    free(dir);
}

/*
 * Repeatable migrations (R__name.sql): loaded beside the numbered ones in
 * Flyway's order (by name, '_' read as a space: "a_b" before "a-b", which
 * byte order puts the other way), with no version and a checksum of
 * their own domain; a down is refused; a caller that does not take them
 * is told, not left to skip them; a directory of them alone is refused.
 */
static void
test_migration_repeatables_load_in_flyway_order(void **state)
{
    char *dir = fl_test_tmpdir();
    fl_migration_list_t l = {NULL, 0}, r = {NULL, 0};
    fl_migration_t m, v;
    fl_error_t err = FL_ERROR_INIT;
    const char *up = "-- flotilla:up\nSELECT 1;\n";

    (void)state;
    free(s_file(dir, "R__a-b.sql", up));
    assert_int_equal(fl_migration_dir_load_all(&l, &r, dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "holds no versioned migration"));
    fl_error_clear(&err);
    free(s_file(dir, "R__a_b.sql", up));
    free(s_file(dir, "0001_a.sql", up));
    assert_int_equal(fl_migration_dir_load_all(&l, &r, dir, &err), 0);
    assert_int_equal(l.count, 1);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.items[0].name, "a_b");
    assert_string_equal(r.items[1].name, "a-b");
    assert_true(r.items[0].repeatable);
    assert_false(fl_version_is_set(&r.items[0].version));
    assert_int_equal(fl_migration_check(&r.items[0], &err), 0);
    assert_int_equal(fl_migration_dir_load(&l, dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "is a repeatable migration"));
    fl_error_clear(&err);
    /* The same text as a versioned file: another checksum. */
    assert_int_equal(fl_migration_parse_repeatable(&m, "R__x.sql", up,
                                                   strlen(up), &err), 0);
    assert_int_equal(fl_migration_parse(&v, "0001_x.sql", up, strlen(up),
                                        &err), 0);
    assert_string_not_equal(m.checksum_hex, v.checksum_hex);
    fl_migration_release(&m);
    fl_migration_release(&v);
    assert_int_equal(fl_migration_parse_repeatable(&m, "R__x.sql",
        "-- flotilla:up\nSELECT 1;\n-- flotilla:down\nSELECT 2;\n", 46,
        &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "no down section"));
    fl_error_clear(&err);
    assert_int_equal(fl_migration_parse_repeatable(&m, "R__x y.sql", up,
                                                   strlen(up), &err),
                     FL_EINVAL);
    fl_error_clear(&err);
    fl_migration_list_release(&l);
    fl_migration_list_release(&r);
    fl_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migration_parse_full_file_fills_every_field),
        cmocka_unit_test(test_migration_up_and_down_checksums),
        cmocka_unit_test(test_migration_parse_minimal_file_leaves_options_unset),
        cmocka_unit_test(test_migration_check_parts_of_a_group),
        cmocka_unit_test(test_migration_parse_errors_name_file_and_line),
        cmocka_unit_test(test_migration_timeouts_are_ones_postgresql_can_set),
        cmocka_unit_test(test_migration_parse_non_utf8_is_refused_with_its_line),
        cmocka_unit_test(test_migration_parse_bad_file_names_are_refused),
        cmocka_unit_test(test_migration_checksum_covers_content_and_options),
        cmocka_unit_test(test_migration_dir_load_orders_by_version),
        cmocka_unit_test(test_migration_dir_load_refuses_empty_duplicate_and_bad_files),
        cmocka_unit_test(test_migration_dir_load_refuses_links_out_of_the_directory),
        cmocka_unit_test(test_migration_repeatables_load_in_flyway_order),
    };
    return cmocka_run_group_tests_name("migration", tests, NULL, NULL);
}
