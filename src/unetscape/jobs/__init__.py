"""What each rule's script calls, one module per rule family: files in, files out, progress in
the log. The numbers come from the layers below (landscape, measures, training); a job chooses
the weights, loads the data and writes the results.

May import every layer of the package and workflow; nothing in the package imports it."""
