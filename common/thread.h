/*
 * thread.h - threads with the stack that SQL's parse trees need.
 *
 * A parse tree is as deep as its deepest expression (a chain of 5,000
 * "+" or "||", a UNION ALL of 10,000 SELECTs is that many levels), and
 * libpg_query renders it, protobuf-c unpacks it and the linter walks it
 * recursively, at up to a few kilobytes of stack a level: past about
 * 5,000 levels the 8 MB a thread gets by default overflowed and the
 * process died (flotilla lint, apply, an agent on a bundle).  Every
 * thread that analyzes SQL runs on FL_THREAD_DEEP_STACK, which is only
 * reserved address space until used; lint/facts.h refuses, as a parse
 * error, a statement that could need more.
 */
#ifndef FL_COMMON_THREAD_H
#define FL_COMMON_THREAD_H

#include <pthread.h>
#include <stddef.h>

#define FL_THREAD_DEEP_STACK ((size_t)512 * 1024 * 1024)

/*
 * pthread_create with a stack of FL_THREAD_DEEP_STACK bytes; when the
 * system refuses that much (a strict overcommit policy), with the
 * default stack instead.  Returns pthread_create's result.
 */
int fl_thread_create_deep(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
