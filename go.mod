module github.com/godiffuse/godiffuse

go 1.26
