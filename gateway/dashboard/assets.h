/* assets.h: the dashboard's files, compiled into the binary.
 *
 * The table is generated at build time by script/embed --table from the
 * files in this folder and uPlot's dist files (gateway/meson.build), so the
 * dashboard needs no CDN and no file on disk at run time. Only
 * gateway/dashboard.c reads it.
 */
#ifndef JUNCTION_GATEWAY_DASHBOARD_ASSETS_H
#define JUNCTION_GATEWAY_DASHBOARD_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* URL path: "/dashboard", "/dashboard/app.js", ... */
    const char *content_type;  /* e.g. "text/javascript; charset=utf-8" */
    const unsigned char *data; /* the file's bytes (static) */
    size_t size;
    const char *etag;          /* quoted strong validator: a hash of data */
} gw_dashboard_asset;

extern const gw_dashboard_asset gw_dashboard_assets[];
extern const size_t gw_dashboard_n_assets;

#endif
