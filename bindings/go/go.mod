module bnorm

go 1.19
