# make bench-plot: the comparison of the last make bench (build/bench.dat, written by
# mpbench -p) as horizontal bars, one group per workload, on a log scale: each bar is
# a system's speed relative to the fastest system measured for that workload (for
# times, speed = 1/time), labelled with its own figure and mp.h's ratio to it.
#   gnuplot -e "datafile='build/bench.dat'; outfile='docs/bench.png'" bench/plot.gp
if (!exists("datafile")) datafile = "build/bench.dat"
if (!exists("outfile")) outfile = "docs/bench.png"

machine = system("sed -n 's/^# title: //p' " . datafile)
stats datafile index 0 using 1 nooutput
rows = STATS_max + 1
stats datafile index 0 using 2 nooutput
kmin = floor(log10(STATS_min))
if (kmin > -2) kmin = -2
xmin = 10**kmin

set terminal pngcairo size 1100, 150 + rows * 19 font "Sans,10"
set output outfile
set title "mp.h beside the peers: speed relative to the fastest system of each workload (log scale; longer is faster)\n{/*0.9 ".machine."}" noenhanced
set title enhanced
set logscale x
set xrange [xmin:30]
set yrange [rows:-1]
set xtics () nomirror
do for [k=kmin:0] {
    set xtics add (k == 0 ? "1 (fastest)" : sprintf("1/%d", 10**(-k)) 10**k)
}
set ytics scale 0 nomirror noenhanced font ",9"
set grid xtics lc rgb "#dddddd"
set border 3
set style fill solid 0.85 noborder
set key below horizontal samplen 1.5 font ",9"
set lmargin 26
set rmargin 2

plot datafile index 0 using (sqrt(xmin*$2)):1:(xmin):2:($1-0.4):($1+0.4):3:ytic(4) \
         with boxxyerror lc rgb variable notitle, \
     '' index 0 using ($2*1.12):1:5 with labels left noenhanced font ",8" notitle, \
     '' index 1 using (xmin*1.08):1:2 with labels left noenhanced font "Sans Bold,9" notitle, \
     NaN with boxes lc rgb "#1f77b4" title "mp.h", \
     NaN with boxes lc rgb "#ff7f0e" title "peers", \
     NaN with boxes lc rgb "#bbbbbb" title "limits (spinning, no blocking)"
