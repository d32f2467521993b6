# plot.gp - the benchmark suite's figure (run by bench/run):
#   gnuplot -c bench/plot.gp DIR OUT.png TITLE JOBS PANELS
# DIR/peers.dat: "dataset -level", then MB/s of pmap, pigz, gzip and
# find | xargs gzip at JOBS jobs ("-" = not measured).
# DIR/scaling.dat (PANELS = 2): jobs, then MB/s of pmap and pigz on the
# large file and of pmap, pigz -r and xargs -P gzip on the small files.
dir = ARG1
jobs = ARG4
set terminal pngcairo size (ARG5 eq "2" ? 1500 : 800),600 font "DejaVu Sans,10"
set output ARG2
set datafile missing "-"
set multiplot layout 1,(ARG5 eq "2" ? 2 : 1) title ARG3
set grid ytics
set ylabel "MB/s (uncompressed)"

if (ARG5 eq "2") {
    set title "Compression throughput against jobs (level 6)"
    set xlabel "jobs"
    set xtics 1
    set xrange [0.5:*]
    set yrange [0:*]
    set key top left
    plot dir."/scaling.dat" using 1:2 with linespoints lw 2 pt 7 title "pmap, large file", \
         "" using 1:3 with linespoints lw 2 pt 5 dt 2 title "pigz, large file", \
         "" using 1:4 with linespoints lw 2 pt 7 title "pmap, small files", \
         "" using 1:5 with linespoints lw 2 pt 5 dt 2 title "pigz -r, small files", \
         "" using 1:6 with linespoints lw 2 pt 9 dt 3 title "xargs -P gzip, small files"
    unset xlabel
    set xrange [*:*]
}

set title "Compression throughput against peers (".jobs." jobs)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics rotate by -30 nomirror
set key top right
plot dir."/peers.dat" using 2:xtic(1) title "pmap", \
     "" using 3 title "pigz -p ".jobs, \
     "" using 4 title "gzip", \
     "" using 5 title "find | xargs -P ".jobs." gzip"
unset multiplot
