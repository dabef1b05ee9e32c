/* cairo (Debian's libcairo2-dev, installed by Scripts/setup.sh): 2-D drawing for detections and charts. */
#include <cairo.h>
#include <cairo-svg.h>
