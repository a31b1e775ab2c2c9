/*
 * forecast.c — forecast the continuation of a series with a forecasting model.
 *
 *   cc -std=c11 -O2 forecast.c -o forecast $(pkg-config --cflags --libs tslm)
 *   ./forecast model.tslm history.csv [horizon]
 *
 * history.csv: one column (an optional header row). Prints the point forecast and the 10% / 90%
 * quantiles per step. Forecasting models (ChatTime, Time-LLM, LSTM) are on tslm's roadmap; a text
 * or classifier model answers TSLM_ERR_WRONG_KIND, which this program reports.
 */
#include <stdio.h>
#include <stdlib.h>

#include <tslm.h>

#include "csv.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.tslm HISTORY.csv [HORIZON]\n", argv[0]);
        return 2;
    }
    csv_table hist;
    if (csv_read(argv[2], &hist) != 0) return 1;

    int rc = 1;
    tslm_model *model = NULL;
    float *point = NULL, *quantiles = NULL;
    int32_t st = tslm_model_load(argv[1], tslm_model_default_params(), &model);
    if (st != TSLM_OK) {
        fprintf(stderr, "tslm_model_load failed: %s: %s\n", tslm_status_name(st), tslm_last_error());
        goto done;
    }
    tslm_forecast_params fp = tslm_forecast_default_params();
    fp.horizon = argc > 3 ? atoi(argv[3]) : 12;
    const float levels[] = {0.1f, 0.9f};
    fp.quantile_levels = levels;
    fp.n_quantiles = 2;
    point = calloc((size_t)(fp.horizon > 0 ? fp.horizon : 1), sizeof *point);
    quantiles = calloc((size_t)(fp.horizon > 0 ? fp.horizon : 1) * 2, sizeof *quantiles);
    if (!point || !quantiles) goto done;

    st = tslm_forecast(model, hist.values, hist.length, fp, point, quantiles); /* first column */
    if (st != TSLM_OK) {
        fprintf(stderr, "tslm_forecast failed: %s: %s\n", tslm_status_name(st), tslm_last_error());
        goto done;
    }
    printf("step,forecast,q10,q90\n");
    for (int t = 0; t < fp.horizon; t++)
        printf("%d,%g,%g,%g\n", t + 1, point[t], quantiles[t], quantiles[fp.horizon + t]);
    rc = 0;
done:
    free(point);
    free(quantiles);
    tslm_model_free(model);
    csv_free(&hist);
    return rc;
}
