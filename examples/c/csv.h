/*
 * csv.h — a small CSV reader for the examples: numeric columns, an optional header row.
 * Values come back channel-major (values[c * length + t]), the layout tslm takes.
 */
#ifndef TSLM_EXAMPLE_CSV_H
#define TSLM_EXAMPLE_CSV_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct csv_table {
    float *values;   /* n_columns * length, channel-major */
    long length;     /* rows */
    int n_columns;
    char **names;    /* column names (header row, or "column N") */
} csv_table;

static void csv_free(csv_table *t) {
    if (!t) return;
    for (int c = 0; t->names && c < t->n_columns; c++) free(t->names[c]);
    free(t->names);
    free(t->values);
    memset(t, 0, sizeof *t);
}

static char *csv_strdup(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (copy) strcpy(copy, s);
    return copy;
}

/* Splits a line at commas in place; returns the field count (at most max). */
static int csv_split(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = '\0';
        p = comma + 1;
    }
    for (int i = 0; i < n; i++) { /* trim */
        char *s = fields[i];
        while (isspace((unsigned char)*s)) s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
        fields[i] = s;
    }
    return n;
}

static int csv_is_number(const char *s) {
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return *end == '\0';
}

/* Reads path into t; returns 0, or -1 with a message on stderr. */
static int csv_read(const char *path, csv_table *t) {
    enum { MAX_COLUMNS = 64 };
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return -1; }
    char line[8192];
    char *fields[MAX_COLUMNS];
    long cap = 0;
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '\0') continue;
        int n = csv_split(line, fields, MAX_COLUMNS);
        if (first) {
            t->n_columns = n;
            t->names = calloc((size_t)n, sizeof *t->names);
            if (!t->names) goto fail;
            int header = !csv_is_number(fields[0]);
            for (int c = 0; c < n; c++) {
                char name[64];
                snprintf(name, sizeof name, "column %d", c + 1);
                t->names[c] = csv_strdup(header ? fields[c] : name);
                if (!t->names[c]) goto fail;
            }
            first = 0;
            if (header) continue;
        }
        if (n != t->n_columns) { fprintf(stderr, "%s: row %ld has %d columns, expected %d\n", path, t->length + 1, n, t->n_columns); goto fail; }
        if (t->length == cap) {
            cap = cap ? cap * 2 : 256;
            float *grown = realloc(t->values, (size_t)cap * (size_t)t->n_columns * sizeof *grown);
            if (!grown) goto fail;
            t->values = grown;
        }
        for (int c = 0; c < n; c++) {
            if (!csv_is_number(fields[c])) { fprintf(stderr, "%s: '%s' is not a number\n", path, fields[c]); goto fail; }
            t->values[t->length * t->n_columns + c] = strtof(fields[c], NULL); /* row-major for now */
        }
        t->length++;
    }
    fclose(f);
    f = NULL;
    if (t->length == 0) { fprintf(stderr, "%s: no data rows\n", path); goto fail; }
    /* row-major -> channel-major */
    float *cm = malloc((size_t)t->length * (size_t)t->n_columns * sizeof *cm);
    if (!cm) goto fail;
    for (long r = 0; r < t->length; r++)
        for (int c = 0; c < t->n_columns; c++) cm[c * t->length + r] = t->values[r * t->n_columns + c];
    free(t->values);
    t->values = cm;
    return 0;
fail:
    if (f) fclose(f);
    csv_free(t);
    return -1;
}

#endif
