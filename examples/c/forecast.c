/*
 * forecast.c — forecast the continuation of a recording with a forecasting model.
 *
 *   cc -std=c11 -O2 forecast.c -o forecast $(pkg-config --cflags --libs tslm)
 *   ./forecast model.tslm history.csv [horizon]
 *
 * history.csv: one column per channel (an optional header row), as many channels as the model
 * reads (tslm_model_forecast_info). Prints the point forecast of every output channel per step;
 * the horizon defaults to the model's. A text or classifier model answers TSLM_ERR_WRONG_KIND,
 * which this program reports.
 */
#include <stdio.h>
#include <stdlib.h>

#include <tslm.h>

#include "csv.h"

static int die(const char *what, int32_t status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tslm_status_name(status), tslm_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.tslm HISTORY.csv [HORIZON]\n", argv[0]);
        return 2;
    }
    csv_table hist;
    if (csv_read(argv[2], &hist) != 0) return 1;

    int rc = 1;
    tslm_model *model = NULL;
    float *point = NULL;
    tslm_forecast_info info = {0, 0, 0, 0};
    int32_t st = tslm_model_load(argv[1], tslm_model_default_params(), &model);
    if (st != TSLM_OK) { rc = die("tslm_model_load", st); goto done; }
    st = tslm_model_forecast_info(model, &info);
    if (st != TSLM_OK) { rc = die("tslm_model_forecast_info", st); goto done; }

    tslm_forecast_params fp = tslm_forecast_default_params();
    fp.horizon = argc > 3 ? atoi(argv[3]) : (info.max_horizon > 0 ? info.max_horizon : 12);
    int32_t outputs = info.output_channels > 0 ? info.output_channels : hist.n_columns;
    point = calloc((size_t)(fp.horizon > 0 ? fp.horizon : 1) * (size_t)outputs, sizeof *point);
    if (!point) goto done;

    st = tslm_forecast_channels(model, hist.values, hist.length, hist.n_columns, fp, point, NULL);
    if (st != TSLM_OK) { rc = die("tslm_forecast_channels", st); goto done; }
    printf("step");
    for (int32_t o = 0; o < outputs; o++) printf(",forecast_%d", o);
    printf("\n");
    for (int t = 0; t < fp.horizon; t++) {
        printf("%d", t + 1);
        for (int32_t o = 0; o < outputs; o++) printf(",%g", point[o * fp.horizon + t]);
        printf("\n");
    }
    rc = 0;
done:
    free(point);
    tslm_model_free(model);
    csv_free(&hist);
    return rc;
}
